"""The price of variance matching, per run and in theory (the theory printed beside Table 2).

For each run: its actual R² and variance ratio v over the whole validation set, and the R²
its predictions would have if rescaled around their mean to v = 1. The theoretical curve
for a predictor with correlation ρ is R² = 2ρ√v − v (minus bias²/var(y)).
"""
from __future__ import annotations

import numpy as np

from cloudml.analysis.scores import r2, rescale_to_unit_variance, variance_ratio

THEORY = (
    "For the MSE-optimal predictor with skill R², var(pred) = R²·var(y); rescaling its "
    "predictions to variance ratio 1 raises the MSE to 2(1 − √R²)·var(y), i.e. R² becomes "
    "2√R² − 1 at best, so variance matching costs skill whenever R² < 1."
)
METHOD = (
    "pred' = mean(pred) + (pred − mean(pred))·sqrt(var(y)/var(pred)) over the whole "
    "validation set (predictions.npz); r2_at_unit_variance is the R² of pred'"
)
FIELDS = ("tradeoff_r2", "tradeoff_variance_ratio", "tradeoff_r2_at_unit_variance", "tradeoff_corr")


def run_tradeoff(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Actual R², variance ratio, R² at variance ratio 1, and corr(pred, y) of one run."""
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(target))) or pred.size < 2:
        return dict.fromkeys(FIELDS, float("nan"))
    corr = np.corrcoef(pred, target)[0, 1] if pred.std() > 0 and target.std() > 0 else float("nan")
    return {
        "tradeoff_r2": r2(pred, target),
        "tradeoff_variance_ratio": variance_ratio(pred, target),
        "tradeoff_r2_at_unit_variance": r2(rescale_to_unit_variance(pred, target), target),
        "tradeoff_corr": float(corr),
    }


def theoretical_r2(rho: float, v: np.ndarray) -> np.ndarray:
    """R² of an unbiased predictor with correlation ρ scaled to variance ratio v."""
    return 2 * rho * np.sqrt(v) - v


def unit_variance_bound(r2_value: float) -> float:
    """2√R² − 1: the best R² at variance ratio 1 for a calibrated predictor of skill R²."""
    return 2 * np.sqrt(max(r2_value, 0.0)) - 1
