"""What each run's statistics are computed from: its validation predictions by flight, the
variance of its training targets, and its split; and the checks that these agree with the
run's own summary and split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cloudml import rundir
from cloudml.analysis import tradeoff
from cloudml.analysis.baselines import SplitSpec
from cloudml.analysis.flightstats import FlightSums
from cloudml.analysis.runs import Sweep, read_predictions, warn
from cloudml.errors import CloudMLError


@dataclass(frozen=True)
class RunEvidence:
    """A run's validation predictions by flight, and var(y_train) in km² (None if unknown)."""

    sums: FlightSums
    train_variance: float | None


def read_all_predictions(sweep: Sweep) -> dict[str, dict]:
    """Run path → its predictions.npz arrays, for the runs that have readable ones."""
    found = {}
    for path in sweep.runs["path"]:
        arrays = read_predictions(sweep.root / path)
        if arrays is not None:
            found[path] = arrays
    return found


def _train_variance(run_dir: Path) -> float | None:
    try:
        std = rundir.read_normalization(run_dir)["target"]["std"]
    except (rundir.RunFileError, KeyError, TypeError):
        return None
    return float(std) ** 2 if isinstance(std, (int, float)) else None


def run_evidence(sweep: Sweep, preds: dict[str, dict]) -> dict[str, RunEvidence]:
    """Run path → RunEvidence, for runs with finite predictions."""
    out = {}
    for path, arrays in preds.items():
        if np.all(np.isfinite(arrays["pred"])) and arrays["pred"].size >= 2:
            sums = FlightSums.of(arrays["pred"], arrays["target"], arrays.get("flight"))
            out[path] = RunEvidence(sums, _train_variance(sweep.root / path))
    return out


def tradeoff_columns(sweep: Sweep, preds: dict[str, dict]) -> pd.DataFrame:
    """The tradeoff fields of every run (NaN without predictions), in the order of ``sweep.runs``."""
    nan = dict.fromkeys(tradeoff.FIELDS, np.nan)
    rows = [tradeoff.run_tradeoff(preds[p]["pred"], preds[p]["target"]) if p in preds else nan for p in sweep.runs["path"]]
    return pd.DataFrame(rows, columns=list(tradeoff.FIELDS), index=sweep.runs.index)


def _same_rows(arrays: dict, val_index: np.ndarray) -> bool:
    if "index" in arrays:
        return np.array_equal(np.sort(arrays["index"].ravel()), np.sort(val_index))
    return arrays["pred"].size == val_index.size


def check_predictions(sweep: Sweep, preds: dict[str, dict], specs: dict) -> None:
    """Warn where a run's predictions disagree with its split or with its own summary."""
    for run in sweep.runs.itertuples():
        arrays = preds.get(run.path)
        if arrays is None:
            continue
        spec = specs.get(run.path)
        if spec is not None and not _same_rows(arrays, spec.val_index):
            warn(f"{run.path}: predictions.npz rows differ from split.npz val_index; "
                 "its R² is not comparable with the baselines")  # fmt: skip
        if pd.notna(run.val_r2) and abs(run.tradeoff_r2 - run.val_r2) > 0.01:
            warn(f"{run.path}: summary val_r2 {run.val_r2:.4f} but predictions.npz gives "
                 f"{run.tradeoff_r2:.4f} (duplicated or missing validation samples?)")  # fmt: skip


def completed_predictions(sweep: Sweep, preds: dict[str, dict], factor: str) -> dict:
    """(pred, target) of every completed run per level of `factor`, for the distribution figure."""
    out: dict = {}
    for run in sweep.runs.to_dict("records"):
        if run["status"] == "completed" and run["path"] in preds:
            out.setdefault(run[factor], []).append((preds[run["path"]]["pred"], preds[run["path"]]["target"]))
    return out


def read_specs(sweep: Sweep) -> tuple[dict, dict[str, str]]:
    """Each run's data/split spec (run path → SplitSpec) and why it is missing elsewhere."""
    specs, missing = {}, {}
    for path in sweep.runs["path"]:
        try:
            specs[path] = SplitSpec.of_run(sweep.root / path)
        except CloudMLError as exc:
            missing[path] = str(exc)
    return specs, missing
