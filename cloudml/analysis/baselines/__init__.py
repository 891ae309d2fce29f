"""Honest baselines for a run's split: the training-split mean, and ridge regression on simple
per-sample frame statistics + scalars.

Both are fitted on the training rows of the run's ``split.npz`` and scored on exactly its
validation rows, so a baseline is never scored on an easier split than the networks; the
features are standardised with training rows only. numpy + h5py, no torch.
``python -m cloudml.analysis.baselines RUN_DIR`` prints them for one run.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloudml import rundir
from cloudml.analysis.baselines.cache import cache_key, cached
from cloudml.analysis.baselines.features import read_features
from cloudml.analysis.baselines.ridge import fit_ridge
from cloudml.analysis.flightstats import FlightSums, percentile_interval, replicates
from cloudml.analysis.scores import regression_scores
from cloudml.errors import CloudMLError

KEY_ROLES = ("images", "scalars", "target", "flight", "time")


@dataclass(frozen=True)
class SplitSpec:
    """Where a run's data lives and which rows it trained and validated on."""

    data_path: Path
    keys: dict  # dataset name per role (images, scalars, target, ...)
    split: str | None
    train_index: np.ndarray
    val_index: np.ndarray
    oracle_r2: float | None

    @classmethod
    def of_run(cls, run_dir: str | Path) -> "SplitSpec":
        """From the run's data.json and split.npz; raises RunFileError."""
        info = rundir.read_data_info(run_dir)
        train, val = rundir.read_split(run_dir)
        keys = {k: v for k, v in (info.get("keys") or {}).items() if k in KEY_ROLES}
        return cls(Path(info["path"]), keys, info.get("split"), train, val, info["oracle_r2"])

    @property
    def split_hash(self) -> str:
        """Identifies the (train, val) index sets, order included."""
        h = hashlib.sha1()
        for idx in (self.train_index, self.val_index):
            h.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes() + b"|")
        return h.hexdigest()[:16]


def scored(pred: np.ndarray, target: np.ndarray, flight: np.ndarray | None) -> dict:
    """The validation scores of a baseline, with a flight-bootstrap interval of its R²."""
    sums = FlightSums.of(pred, target, flight)
    ci = percentile_interval(replicates([sums], lambda st: st[0]["r2"]))
    return {**regression_scores(pred, target), "val_r2_ci": list(ci), "interval_method": sums.method}


def oracle_scores(spec: SplitSpec, y_va: np.ndarray, flight_va: np.ndarray | None) -> dict | None:
    """Scores of the file's `oracle_pred` (synthetic data: E[h | cloud top]) on the same split."""
    from cloudml.data.schema import open_h5

    with open_h5(spec.data_path) as f:
        if "oracle_pred" not in f:
            return None
        oracle = np.asarray(f["oracle_pred"][()], np.float64)[spec.val_index]
    return {**scored(oracle, y_va, flight_va), "what": "Bayes reference E[h | cloud top] of the generator"}


def compute_baselines(spec: SplitSpec, memory_budget_mb: float = 64) -> dict:
    """Mean predictor and ridge, fitted on the train rows and scored on the val rows."""
    if spec.train_index.size < 2 or spec.val_index.size < 2:
        raise CloudMLError("split.npz needs at least 2 training and 2 validation indices")
    rows = np.unique(np.concatenate([spec.train_index, spec.val_index]))
    X, y, names, flights = read_features(spec.data_path, spec.keys, rows, memory_budget_mb)
    at = {"train": np.searchsorted(rows, spec.train_index), "val": np.searchsorted(rows, spec.val_index)}
    if not np.all(np.isfinite(X)):
        raise CloudMLError(f"non-finite pixels in the split's rows of {spec.data_path}")
    X_tr, y_tr, X_va, y_va = X[at["train"]], y[at["train"]], X[at["val"]], y[at["val"]]
    flight_va = None if flights is None else flights[at["val"]]
    ridge = fit_ridge(X_tr, y_tr)
    oracle = oracle_scores(spec, y_va, flight_va)
    return {
        "available": True,
        "data_path": str(spec.data_path),
        "split": spec.split,
        "split_hash": spec.split_hash,
        "n_train": int(spec.train_index.size),
        "n_val": int(spec.val_index.size),
        "mean_predictor": {**scored(np.full_like(y_va, y_tr.mean()), y_va, flight_va),
                           "train_mean_km": float(y_tr.mean())},  # fmt: skip
        "ridge": {**scored(ridge.predict(X_va), y_va, flight_va), "alpha": ridge.alpha,
                  "alpha_method": "generalised cross-validation on the training split",
                  "features": names},  # fmt: skip
        "standardisation": "feature mean/std from the training split only",
        **({"oracle": oracle} if oracle else {}),
    }


def baselines_for(spec: SplitSpec, cache_file: Path | None = None, memory_budget_mb: float = 64) -> dict:
    """:func:`compute_baselines`, cached in ``cache_file`` per (file, mtime, size, split);
    a missing or unreadable data file gives ``{"available": False, "reason": ...}``."""
    try:
        key = cache_key(spec.data_path, spec.split_hash, spec.keys)
    except OSError:
        return {"available": False, "reason": f"data file {spec.data_path} not found"}

    def compute() -> dict:
        try:
            return compute_baselines(spec, memory_budget_mb)
        except (CloudMLError, OSError) as exc:
            return {"available": False, "reason": str(exc)}

    return cached(cache_file, key, compute)
