"""Find and read the run directories of a sweep (the files of SPEC §3).

A run is any directory, at most two levels below the sweep directory, holding
``summary.json`` or ``.hydra/config.yaml``. A summary that cannot be trusted (not JSON,
wrong types, disagreeing with the run's own config) makes the run *broken*: it is listed
with a one-line reason and the rest of the sweep is analysed.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cloudml.analysis.tradeoff import FIELDS as TRADEOFF_FIELDS
from cloudml.errors import CloudMLError

STATUSES = ("completed", "diverged", "failed", "running")
STABILITIES = ("stable", "unstable", "diverged")
FINAL_KEYS = ("val_r2", "val_variance_ratio", "val_mae", "val_rmse")
NUMBER_KEYS = ("epochs_completed", "epochs_planned", "avg_base_loss_last5",
               "avg_var_loss_last5", "wall_time_s", "diverged_epoch")
RUN_COLUMNS = ("path", "variance_lambda", "seed", "model", "status", "epochs_completed",
               "epochs_planned", *FINAL_KEYS, "avg_base_loss", "avg_var_loss", "stability",
               "stability_reason", "diverged_epoch", "collapsed", "wall_time_s", "error",
               *TRADEOFF_FIELDS)  # the tradeoff columns stay NaN until predictions are read
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BrokenRun(CloudMLError):
    """A run directory whose files cannot be trusted; the message is a one-line reason."""


@dataclass
class Sweep:
    """The readable runs of a sweep (one DataFrame row each) and the broken ones."""

    root: Path
    runs: pd.DataFrame
    broken: list[dict] = field(default_factory=list)


def warn(message: str) -> None:
    """One-line warning on stderr (the analysis goes on)."""
    print(f"analyze.py: warning: {message}", file=sys.stderr)


def find_run_dirs(sweep_dir: Path, max_depth: int = 2) -> list[Path]:
    """Run directories at depth 0..max_depth below ``sweep_dir``, in sorted order."""
    found, level = [], [Path(sweep_dir)]
    for _ in range(max_depth + 1):
        below = []
        for d in level:
            if (d / "summary.json").is_file() or (d / ".hydra" / "config.yaml").is_file():
                found.append(d)  # a run: do not descend into its checkpoints etc.
            else:
                below += sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        level = below
    return sorted(found)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite(x) -> bool:
    return _is_number(x) and math.isfinite(x)


def read_config(run_dir: Path) -> dict:
    """The run's resolved Hydra config as a plain dict ({} if absent)."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    try:
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BrokenRun(f".hydra/config.yaml is not valid YAML ({type(exc).__name__})") from None
    return cfg if isinstance(cfg, dict) else {}


def _config_lambda(cfg: dict):
    loss = cfg.get("loss")
    return loss.get("variance_lambda") if isinstance(loss, dict) else None


def read_summary(run_dir: Path) -> dict:
    """``summary.json`` checked against the contract; raises :class:`BrokenRun`."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BrokenRun(f"summary.json is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise BrokenRun(f"summary.json cannot be read ({type(exc).__name__})") from None
    if not isinstance(summary, dict):
        raise BrokenRun(f"summary.json holds a {type(summary).__name__}, expected an object")
    status = summary.get("status")
    if status not in STATUSES:
        raise BrokenRun(f"status {status!r} is not one of {', '.join(STATUSES)}")
    lam = summary.get("variance_lambda")
    if not _finite(lam) or lam < 0:
        raise BrokenRun(f"variance_lambda {lam!r} is not a finite number ≥ 0")
    seed = summary.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise BrokenRun(f"seed {seed!r} is not an integer")
    final = summary.get("final") or {}
    if not isinstance(final, dict):
        raise BrokenRun(f"final is a {type(final).__name__}, expected an object")
    for key, value in [*((k, final.get(k)) for k in FINAL_KEYS),
                       *((k, summary.get(k)) for k in NUMBER_KEYS)]:
        if value is not None and not _is_number(value):
            raise BrokenRun(f"{key} {value!r} is not a number")
    stability = summary.get("stability")
    if stability is not None and stability not in STABILITIES:
        raise BrokenRun(f"stability {stability!r} is not one of {', '.join(STABILITIES)}")
    if status == "completed":
        missing = [k for k in ("val_r2", "val_variance_ratio") if not _finite(final.get(k))]
        if missing:
            raise BrokenRun(f"status is completed but final.{missing[0]} is missing or not finite")
        if stability is None:
            raise BrokenRun("status is completed but stability is missing")
    return summary


def _relative(run_dir: Path, sweep_root: Path) -> str:
    """A run's path as written in the summary: relative to the sweep directory."""
    return str(run_dir.relative_to(sweep_root))


def load_run(run_dir: Path, sweep_root: Path) -> dict:
    """One flat row for a run; a run without summary.json yet counts as ``running``."""
    cfg = read_config(run_dir)
    if not (run_dir / "summary.json").is_file():
        lam = _config_lambda(cfg)
        if not _finite(lam):
            raise BrokenRun("no summary.json and no numeric loss.variance_lambda in .hydra/config.yaml")
        summary = {"status": "running", "variance_lambda": lam, "seed": cfg.get("seed")}
    else:
        summary = read_summary(run_dir)
    lam, seed = float(summary["variance_lambda"]), summary.get("seed")
    cfg_lam, cfg_seed = _config_lambda(cfg), cfg.get("seed")
    if _finite(cfg_lam) and not math.isclose(cfg_lam, lam, rel_tol=1e-9, abs_tol=1e-12):
        raise BrokenRun(f"summary.json says variance_lambda={lam:g} but .hydra/config.yaml says {cfg_lam:g}")
    if seed is None:
        seed = cfg_seed if isinstance(cfg_seed, int) else None
    elif isinstance(cfg_seed, int) and cfg_seed != seed:
        raise BrokenRun(f"summary.json says seed={seed} but .hydra/config.yaml says {cfg_seed}")
    final = summary.get("final") or {}
    status = summary["status"]
    stability = summary.get("stability") or ("diverged" if status == "diverged" else None)
    return {
        "path": _relative(run_dir, sweep_root),
        "variance_lambda": lam,
        "seed": seed,
        "model": summary.get("model"),
        "status": status,
        "epochs_completed": summary.get("epochs_completed"),
        "epochs_planned": summary.get("epochs_planned"),
        **{k: final.get(k) for k in FINAL_KEYS},
        "avg_base_loss": summary.get("avg_base_loss_last5"),
        "avg_var_loss": summary.get("avg_var_loss_last5"),
        "stability": stability,
        "stability_reason": summary.get("stability_reason"),
        "diverged_epoch": summary.get("diverged_epoch"),
        "collapsed": summary.get("collapsed"),
        "wall_time_s": summary.get("wall_time_s"),
        "error": summary.get("error"),
    }


def load_sweep(sweep_dir: Path) -> Sweep:
    """Read every run below ``sweep_dir``; broken ones are warned about and listed.
    A directory without any run is an error (CloudMLError)."""
    root = Path(sweep_dir)
    run_dirs = find_run_dirs(root)
    if not run_dirs:
        raise CloudMLError(f"sweep_dir {root} holds no runs (expected job directories with "
                           "summary.json or .hydra/config.yaml, at most 2 levels down)")
    rows, broken = [], []
    for run_dir in run_dirs:
        try:
            rows.append(load_run(run_dir, root))
        except BrokenRun as exc:
            broken.append({"path": _relative(run_dir, root), "reason": str(exc)})
            warn(f"broken run {run_dir}: {exc}")
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    runs["seed"] = runs["seed"].astype("Int64")
    runs["variance_lambda"] = runs["variance_lambda"].astype(float)
    return Sweep(root=root, runs=runs, broken=broken)


def read_history(run_dir: Path) -> pd.DataFrame | None:
    """``history.csv`` of a run, or None (with a warning) if absent or unreadable."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    try:
        history = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        warn(f"{path}: unreadable ({type(exc).__name__}); no training curve for this run")
        return None
    if "epoch" not in history.columns:
        warn(f"{path}: no 'epoch' column; no training curve for this run")
        return None
    return history


def read_predictions(run_dir: Path) -> dict[str, np.ndarray] | None:
    """``predictions.npz`` arrays (pred, target, and index/flight if present), or None."""
    path = run_dir / "predictions.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        warn(f"{path}: unreadable ({type(exc).__name__}: {exc})")
        return None
    pred, target = arrays.get("pred"), arrays.get("target")
    if pred is None or target is None or pred.ravel().shape != target.ravel().shape:
        warn(f"{path}: expected arrays 'pred' and 'target' of equal length")
        return None
    arrays["pred"], arrays["target"] = pred.ravel().astype(float), target.ravel().astype(float)
    return arrays
