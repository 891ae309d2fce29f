"""Whole-set regression scores in numpy (km in, unitless or km out).

One definition shared by the tradeoff analysis and the baselines, so a network and a
baseline are always scored by the same formulas. Variances use ddof=0 for both pred and
target, so the variance ratio is var(pred)/var(y) over the whole set (not a std ratio).
"""
from __future__ import annotations

import numpy as np


def r2(pred: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination 1 − SSE/SST, SST around the target's own mean."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    sst = np.sum((target - target.mean()) ** 2)
    return float(1.0 - np.sum((pred - target) ** 2) / sst) if sst > 0 else float("nan")


def variance_ratio(pred: np.ndarray, target: np.ndarray) -> float:
    """var(pred) / var(y) as a fraction (1.0 = 100 %)."""
    var_y = np.var(np.asarray(target, float))
    return float(np.var(np.asarray(pred, float)) / var_y) if var_y > 0 else float("nan")


def regression_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The four validation numbers every run and baseline reports."""
    err = np.asarray(pred, float) - np.asarray(target, float)
    return {
        "val_r2": r2(pred, target),
        "val_variance_ratio": variance_ratio(pred, target),
        "val_mae": float(np.mean(np.abs(err))),
        "val_rmse": float(np.sqrt(np.mean(err**2))),
    }


def rescale_to_unit_variance(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Scale ``pred`` around its mean so that var(pred') = var(y) (variance ratio 1)."""
    pred = np.asarray(pred, float)
    sd_pred = pred.std()
    if sd_pred == 0:
        return pred.copy()
    return pred.mean() + (pred - pred.mean()) * (np.asarray(target, float).std() / sd_pred)
