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


def _oracle(spec: SplitSpec) -> list | None:
    """The file's `oracle_pred` at the validation rows (synthetic data: E[h | cloud top]), or None."""
    from cloudml.data.schema import open_h5

    with open_h5(spec.data_path) as f:
        if "oracle_pred" not in f:
            return None
        return np.asarray(f["oracle_pred"][()], np.float64)[spec.val_index].tolist()


def compute_predictions(spec: SplitSpec, memory_budget_mb: float = 64) -> dict:
    """The baselines' predictions on the validation rows (km), fitted on the training rows only."""
    if spec.train_index.size < 2 or spec.val_index.size < 2:
        raise CloudMLError("split.npz needs at least 2 training and 2 validation indices")
    rows = np.unique(np.concatenate([spec.train_index, spec.val_index]))
    X, y, names, flights = read_features(spec.data_path, spec.keys, rows, memory_budget_mb)
    at = {"train": np.searchsorted(rows, spec.train_index), "val": np.searchsorted(rows, spec.val_index)}
    if not np.all(np.isfinite(X)):
        raise CloudMLError(f"non-finite pixels in the split's rows of {spec.data_path}")
    X_tr, y_tr, X_va, y_va = X[at["train"]], y[at["train"]], X[at["val"]], y[at["val"]]
    ridge = fit_ridge(X_tr, y_tr)
    return {
        "available": True,
        "target": y_va.tolist(),
        "flight": None if flights is None else flights[at["val"]].tolist(),
        "mean_predictor": np.full_like(y_va, y_tr.mean()).tolist(),
        "ridge": ridge.predict(X_va).tolist(),
        "oracle": _oracle(spec),
        "ridge_alpha": ridge.alpha,
        "features": names,
        "n_train": int(spec.train_index.size),
    }


def predictions_for(spec: SplitSpec, cache_file: Path | None = None, memory_budget_mb: float = 64) -> dict:
    """:func:`compute_predictions`, cached in ``cache_file`` per (file, mtime, size, split);
    a missing or unreadable data file gives ``{"available": False, "reason": ...}``."""
    try:
        key = cache_key(spec.data_path, spec.split_hash, spec.keys)
    except OSError:
        return {"available": False, "reason": f"data file {spec.data_path} not found"}

    def compute() -> dict:
        try:
            return compute_predictions(spec, memory_budget_mb)
        except (CloudMLError, OSError) as exc:
            return {"available": False, "reason": str(exc)}

    return cached(cache_file, key, compute)


def score(specs: list[SplitSpec], predictions: list[dict]) -> dict:
    """Scores of the baselines over the validation rows of `specs`, pooled (one spec: its split;
    the folds of a leave-one-flight-out sweep: every sample predicted by the fold that held it out)."""
    missing = next((p for p in predictions if not p.get("available")), None)
    if missing is not None:
        return {"available": False, "reason": missing["reason"]}
    joined = lambda key: np.concatenate([np.asarray(p[key], float) for p in predictions])  # noqa: E731
    y = joined("target")
    flight = None if any(p["flight"] is None for p in predictions) else joined("flight")
    alphas = sorted({p["ridge_alpha"] for p in predictions})
    out = {
        "available": True,
        "data_path": str(specs[0].data_path),
        "split": specs[0].split,
        "split_hash": specs[0].split_hash if len(specs) == 1 else None,
        "n_folds": len(specs),
        "n_train": int(specs[0].train_index.size) if len(specs) == 1 else None,
        "n_val": int(y.size),
        "mean_predictor": {**scored(joined("mean_predictor"), y, flight), "train_mean_km": float(predictions[0]["mean_predictor"][0])},
        "ridge": {**scored(joined("ridge"), y, flight), "alpha": alphas[0] if len(alphas) == 1 else alphas,
                  "alpha_method": "generalised cross-validation on the training split", "features": predictions[0]["features"]},
        "standardisation": "feature mean/std from the training split only",
    }  # fmt: skip
    if all(p["oracle"] is not None for p in predictions):
        out["oracle"] = {**scored(joined("oracle"), y, flight), "what": "Bayes reference E[h | cloud top] of the generator"}
    return out


def baselines_for(spec: SplitSpec, cache_file: Path | None = None, memory_budget_mb: float = 64) -> dict:
    """The baselines' scores on one run's split (cached predictions)."""
    return score([spec], [predictions_for(spec, cache_file, memory_budget_mb)])


def pooled_baselines(specs: list[SplitSpec], cache_file: Path | None = None, memory_budget_mb: float = 64) -> dict:
    """The baselines of a leave-one-flight-out sweep: each fold fitted on its training flights,
    predicting its held-out flight, all folds pooled."""
    return score(specs, [predictions_for(s, cache_file, memory_budget_mb) for s in specs])
