"""Writing each run file atomically, and reading it back checked against the contract.

Readers raise `RunFileError` with a one-line reason when a file exists but cannot be trusted;
a file that is simply absent reads as empty (history) or None (predictions, config).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from cloudml.atomic import write_json, write_npz, write_text
from cloudml.errors import CloudMLError
from cloudml.rundir.names import (DATA, FINAL_KEYS, HISTORY, HISTORY_COLUMNS, HYDRA_CONFIG, HYDRA_OVERRIDES,
                                  HYDRA_RUNTIME, NORMALIZATION,
                                  PREDICTIONS, SPLIT, STABILITIES, STATUSES, SUMMARY)  # fmt: skip
from cloudml.rundir.verdicts import finite

NUMBER_KEYS = ("epochs_completed", "epochs_planned", "avg_base_loss_last5", "avg_var_loss_last5",
               "wall_time_s", "diverged_epoch")  # fmt: skip
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RunFileError(CloudMLError):
    """A run file that exists but cannot be trusted; the message is a one-line reason."""


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# -- history.csv -------------------------------------------------------------------------------
def write_history(run_dir: Path, rows: list, columns: list = HISTORY_COLUMNS) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(Path(run_dir) / HISTORY, buffer.getvalue())


def _history_value(column: str, text: str):
    if column == "epoch":
        return int(float(text))
    return float(text) if text != "" else math.nan  # pandas writes NaN as an empty field


def read_history(run_dir: Path) -> list:
    """Rows of history.csv as dicts of floats (epoch as int); [] when there is none yet."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "epoch" not in (reader.fieldnames or []):
                raise RunFileError(f"{path}: no 'epoch' column")
            return [{k: _history_value(k, v) for k, v in row.items()} for row in reader]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise RunFileError(f"{path}: unreadable ({type(exc).__name__}: {str(exc)[:80]})") from None


# -- summary.json ------------------------------------------------------------------------------
def write_summary(run_dir: Path, summary: dict) -> None:
    write_json(Path(run_dir) / SUMMARY, summary)


def read_summary(run_dir: Path) -> dict:
    """summary.json checked against the contract (statuses, types, what `completed` implies)."""
    try:
        summary = json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunFileError(f"summary.json is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise RunFileError(f"summary.json cannot be read ({type(exc).__name__})") from None
    if not isinstance(summary, dict):
        raise RunFileError(f"summary.json holds a {type(summary).__name__}, expected an object")
    status = summary.get("status")
    if status not in STATUSES:
        raise RunFileError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    lam = summary.get("variance_lambda")
    if not finite(lam) or lam < 0:
        raise RunFileError(f"variance_lambda {lam!r} is not a finite number ≥ 0")
    seed = summary.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RunFileError(f"seed {seed!r} is not an integer")
    final = summary.get("final") or {}
    if not isinstance(final, dict):
        raise RunFileError(f"final is a {type(final).__name__}, expected an object")
    for key, value in [*((k, final.get(k)) for k in FINAL_KEYS), *((k, summary.get(k)) for k in NUMBER_KEYS)]:
        if value is not None and not _is_number(value):
            raise RunFileError(f"{key} {value!r} is not a number")
    label = summary.get("stability")
    if label is not None and label not in STABILITIES:
        raise RunFileError(f"stability {label!r} is not one of {', '.join(STABILITIES)}")
    if status == "completed":
        missing = [k for k in ("val_r2", "val_variance_ratio") if not finite(final.get(k))]
        if missing:
            raise RunFileError(f"status is completed but final.{missing[0]} is missing or not finite")
        if label is None:
            raise RunFileError("status is completed but stability is missing")
    return summary


# -- .hydra/config.yaml ------------------------------------------------------------------------
def read_config(run_dir: Path) -> dict:
    """The run's resolved Hydra config as a plain dict ({} if absent)."""
    path = Path(run_dir) / HYDRA_CONFIG
    if not path.is_file():
        return {}
    try:
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunFileError(f".hydra/config.yaml is not valid YAML ({type(exc).__name__})") from None
    return cfg if isinstance(cfg, dict) else {}


def read_overrides(run_dir: Path) -> dict:
    """The run's command-line overrides as {key: value text} (leading +/~ dropped; {} if absent)."""
    path = Path(run_dir) / HYDRA_OVERRIDES
    if not path.is_file():
        return {}
    try:
        items = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or []
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunFileError(f".hydra/overrides.yaml is not valid YAML ({type(exc).__name__})") from None
    if not isinstance(items, list):
        raise RunFileError(".hydra/overrides.yaml holds no list of overrides")
    pairs = (str(item).lstrip("+~").partition("=") for item in items)
    return {key: value for key, sep, value in pairs if sep}


def read_name_exclusions(run_dir: Path) -> list:
    """The override keys Hydra left out of the job directory's name (settings that do not change
    what a job computes), from `.hydra/hydra.yaml`; [] if absent or unreadable."""
    path = Path(run_dir) / HYDRA_RUNTIME
    try:
        hydra = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)["hydra"]
        keys = hydra["job"]["config"]["override_dirname"]["exclude_keys"]
    except (OSError, yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError):
        return []
    return [str(k) for k in keys] if isinstance(keys, list) else []


# -- predictions.npz ---------------------------------------------------------------------------
def write_predictions(run_dir: Path, pred: np.ndarray, target: np.ndarray, index: np.ndarray,
                      flight: Optional[np.ndarray] = None) -> None:  # fmt: skip
    """Validation predictions and targets (km) in validation order, with their file rows."""
    extra = {} if flight is None else {"flight": np.asarray(flight, np.int32)}
    write_npz(Path(run_dir) / PREDICTIONS, pred=pred, target=target, index=np.asarray(index, np.int64), **extra)


def read_predictions(run_dir: Path) -> Optional[dict]:
    """predictions.npz arrays (pred and target as flat float64; index, flight if present), or None."""
    path = Path(run_dir) / PREDICTIONS
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise RunFileError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    pred, target = arrays.get("pred"), arrays.get("target")
    if pred is None or target is None or pred.ravel().shape != target.ravel().shape:
        raise RunFileError(f"{path}: expected arrays 'pred' and 'target' of equal length")
    arrays["pred"], arrays["target"] = pred.ravel().astype(float), target.ravel().astype(float)
    return arrays


# -- data.json, split.npz, normalization.json --------------------------------------------------
def write_data_files(run_dir: Path, info: dict, statistics: dict, train_index, val_index) -> None:
    """Where the data came from, the exact split, and the training split's statistics."""
    run_dir = Path(run_dir)
    write_json(run_dir / DATA, json.loads(json.dumps(info, default=float)))
    write_json(run_dir / NORMALIZATION, statistics)
    write_npz(run_dir / SPLIT, train_index=np.asarray(train_index), val_index=np.asarray(val_index))


def _json_object(path: Path) -> dict:
    """A JSON file holding an object; RunFileError naming the file otherwise."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(content, dict):
        raise RunFileError(f"{path} holds a {type(content).__name__}, expected an object")
    return content


def read_data_info(run_dir: Path) -> dict:
    """data.json, with its data file `path` made absolute (relative paths are to the run)."""
    path = Path(run_dir) / DATA
    info = _json_object(path)
    if not isinstance(info.get("path"), str):
        raise RunFileError(f"{path} has no string 'path'")
    data = Path(info["path"])
    info["path"] = str(data if data.is_absolute() else Path(run_dir) / data)
    oracle = info.get("oracle_r2")
    info["oracle_r2"] = float(oracle) if _is_number(oracle) and math.isfinite(oracle) else None
    return info


def read_normalization(run_dir: Path) -> dict:
    """normalization.json: the training split's statistics (images, scalars, target in km)."""
    return _json_object(Path(run_dir) / NORMALIZATION)


def read_split(run_dir: Path) -> tuple:
    """(train_index, val_index) as int64 arrays of data-file rows."""
    path = Path(run_dir) / SPLIT
    try:
        with np.load(path, allow_pickle=False) as npz:
            return np.asarray(npz["train_index"], np.int64), np.asarray(npz["val_index"], np.int64)
    except FileNotFoundError:
        raise RunFileError(f"{path} not found") from None
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise RunFileError(f"{path} unreadable or lacks train_index/val_index ({exc})") from None
