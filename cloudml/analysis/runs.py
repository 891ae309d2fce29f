"""Find and read the run directories of a sweep into one table (a row per run).

A run is any directory, at most two levels below the sweep directory, holding
``summary.json`` or ``.hydra/config.yaml``. A run whose files cannot be trusted (not JSON,
wrong types, a summary disagreeing with the run's own config) is *broken*: it is listed with
a one-line reason and the rest of the sweep is analysed. Each file is read by
:mod:`cloudml.rundir`, which owns the contract.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cloudml import rundir
from cloudml.analysis.factors import setting
from cloudml.analysis.tradeoff import FIELDS as TRADEOFF_FIELDS
from cloudml.errors import CloudMLError
from cloudml.rundir import FINAL_KEYS, RunFileError, Verdicts
from cloudml.rundir.verdicts import finite, judges_spikes, stability, val_drift

RUN_COLUMNS = ("path", "variance_lambda", "seed", "model", "status", "epochs_completed",
               "epochs_planned", *FINAL_KEYS, "avg_base_loss", "avg_var_loss", "stability",
               "stability_reason", "val_drift", "diverged_epoch", "collapsed", "wall_time_s", "seconds_per_epoch",
               "parameters", "error", "setting", "split", "fold",
               *TRADEOFF_FIELDS)  # the tradeoff columns stay NaN until predictions are read


@dataclass
class Sweep:
    """The readable runs of a sweep (one DataFrame row each) and the broken ones."""

    root: Path
    runs: pd.DataFrame
    broken: list[dict] = field(default_factory=list)


def warn(message: str) -> None:
    """One-line warning on stderr (the analysis goes on)."""
    print(f"analyze.py: warning: {message}", file=sys.stderr)


def resolve_sweep_dir(sweep_dir: str | None, cwd: Path) -> Path:
    """``sweep_dir``, or the newest directory under ``multirun/`` when it is None."""
    if sweep_dir is None:
        multirun = cwd / "multirun"
        candidates = [d for d in multirun.iterdir() if d.is_dir()] if multirun.is_dir() else []
        if not candidates:
            raise CloudMLError(f"sweep_dir not given and {multirun} holds no sweep directory "
                               "(expected multirun/<name>/ from `python train.py -m ...`)")  # fmt: skip

        def newest(d: Path) -> float:  # Hydra rewrites multirun.yaml on each launch
            marker = d / "multirun.yaml"
            return max(d.stat().st_mtime, marker.stat().st_mtime if marker.is_file() else 0.0)

        return max(candidates, key=newest)
    path = Path(sweep_dir)
    path = path if path.is_absolute() else cwd / path
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise CloudMLError(f"sweep_dir {path} {what} (expected a sweep directory of job directories "
                           "holding summary.json)")  # fmt: skip
    return path


def find_run_dirs(sweep_dir: Path, max_depth: int = 2) -> list[Path]:
    """Run directories at depth 0..max_depth below ``sweep_dir``, in sorted order."""
    found, level = [], [Path(sweep_dir)]
    for _ in range(max_depth + 1):
        below = []
        for d in level:
            if (d / rundir.SUMMARY).is_file() or (d / rundir.HYDRA_CONFIG).is_file():
                found.append(d)  # a run: do not descend into its checkpoints etc.
            else:
                below += sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        level = below
    return sorted(found)


def _config_lambda(cfg: dict):
    loss = cfg.get("loss")
    return loss.get("variance_lambda") if isinstance(loss, dict) else None


def _relative(run_dir: Path, sweep_root: Path) -> str:
    """A run's path as written in the summary: relative to the sweep directory."""
    return str(run_dir.relative_to(sweep_root))


def _verdicts(run_dir: Path, summary: dict, verdicts: Verdicts) -> tuple:
    """(stability, reason, val_drift) by this analysis' thresholds from history.csv; the summary's
    own when the history predates the per-step spike ratios or cannot be read."""
    status = summary["status"]
    label = summary.get("stability") or ("diverged" if status == "diverged" else None)
    kept = (label, summary.get("stability_reason"), summary.get("val_drift"))
    if status not in rundir.FINISHED:
        return kept
    try:
        history = rundir.read_history(run_dir)
    except RunFileError:
        return kept
    if not judges_spikes(history):
        return kept
    return (*stability(history, summary.get("diverged_epoch"), verdicts), val_drift(history, verdicts))


def load_run(run_dir: Path, sweep_root: Path, verdicts: Verdicts) -> dict:
    """One flat row for a run; a run without summary.json yet counts as ``running``."""
    cfg = rundir.read_config(run_dir)
    if not (run_dir / rundir.SUMMARY).is_file():
        lam = _config_lambda(cfg)
        if not finite(lam):
            raise RunFileError("no summary.json and no numeric loss.variance_lambda in .hydra/config.yaml")
        summary = {"status": "running", "variance_lambda": lam, "seed": cfg.get("seed")}
    else:
        summary = rundir.read_summary(run_dir)
    lam, seed = float(summary["variance_lambda"]), summary.get("seed")
    cfg_lam, cfg_seed = _config_lambda(cfg), cfg.get("seed")
    if finite(cfg_lam) and not math.isclose(cfg_lam, lam, rel_tol=1e-9, abs_tol=1e-12):
        raise RunFileError(f"summary.json says variance_lambda={lam:g} but .hydra/config.yaml says {cfg_lam:g}")
    if seed is None:
        seed = cfg_seed if isinstance(cfg_seed, int) else None
    elif isinstance(cfg_seed, int) and cfg_seed != seed:
        raise RunFileError(f"summary.json says seed={seed} but .hydra/config.yaml says {cfg_seed}")
    final = summary.get("final") or {}
    status = summary["status"]
    label, reason, drift = _verdicts(run_dir, summary, verdicts)
    split = (cfg.get("data") or {}).get("split") or {}
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
        "stability": label,
        "stability_reason": reason,
        "val_drift": drift,
        "diverged_epoch": summary.get("diverged_epoch"),
        "collapsed": rundir.is_collapsed(final.get("val_variance_ratio"), verdicts) if status == "completed" else None,
        "wall_time_s": summary.get("wall_time_s"),
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "parameters": summary.get("parameters"),
        "error": summary.get("error"),
        "setting": setting(rundir.read_overrides(run_dir), rundir.read_name_exclusions(run_dir)),
        "split": split.get("kind"),
        "fold": split.get("fold") if split.get("kind") == "cv" else None,
    }


def load_sweep(sweep_dir: Path, verdicts: Verdicts = Verdicts()) -> Sweep:
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
            rows.append(load_run(run_dir, root, verdicts))
        except RunFileError as exc:
            broken.append({"path": _relative(run_dir, root), "reason": str(exc)})
            warn(f"broken run {run_dir}: {exc}")
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    runs["seed"] = runs["seed"].astype("Int64")
    runs["variance_lambda"] = runs["variance_lambda"].astype(float)
    return Sweep(root=root, runs=runs, broken=broken)


def read_history(run_dir: Path) -> pd.DataFrame | None:
    """A run's history.csv as a table, or None (with a warning) when it has none or it is unreadable."""
    try:
        rows = rundir.read_history(run_dir)
    except RunFileError as exc:
        warn(f"{exc}; no training curve for this run")
        return None
    return pd.DataFrame(rows) if rows else None


def read_predictions(run_dir: Path) -> dict | None:
    """A run's predictions.npz arrays, or None (with a warning) when absent or unreadable."""
    try:
        return rundir.read_predictions(run_dir)
    except RunFileError as exc:
        warn(str(exc))
        return None
