"""Why did the variance collapse? The collapse diagnosis of a run, or of a group of seeds.

With v = var(p)/var(y), ρ = corr(p, y), bias β = (mean p − mean y)/sd(y) and the calibration
slope b = cov(p, y)/var(p) = ρ/√v, the skill decomposes exactly as

    R² = ρ² − (ρ − √v)² − β²        (signal − dispersion error − bias²)

Verdict, from the flight-bootstrap interval of b:
- ``calibrated``: the interval holds 1. The spread is what the signal supports (v ≈ ρ²); a
  widening these predictions can only cost skill, at best R² = 2ρ − 1 − β² at v = 1 (a model
  retrained with a variance term is another predictor, and may differ either way).
- ``under-dispersed``: b > 1. Predictions spread less than their own signal supports, a
  training pathology that a variance term can help.
- ``over-dispersed``: b < 1. Predictions spread more than their signal supports.
- ``undetermined``: no interval (fewer than 10 usable bootstrap replicates).
Also: the within-flight ρ and R² (p and y demeaned per flight: does the model retrieve heights
within a flight, or only recognise flights?), and var(p)/var(y_train) beside var(p)/var(y_val)
(the training objective aims at the training variance).
"""
from __future__ import annotations

import numpy as np

from cloudml.analysis.flightstats import FlightSums, percentile_interval, replicates

VERDICT_RULE = ("calibration slope b = cov(p, y)/var(p) with a flight-bootstrap 95 % interval; calibrated if the "
                "interval holds 1 (the spread is what the signal supports), under-dispersed if it lies above 1 (a "
                "training pathology a variance term can help), over-dispersed if below 1")  # fmt: skip
KEYS = ("rho", "bias", "calibration_slope", "calibration_slope_ci", "dispersion_error", "r2_within_flight",
        "variance_ratio_train", "verdict")  # fmt: skip


def verdict(ci) -> str:
    """calibrated / under-dispersed / over-dispersed from the interval of the calibration slope."""
    lo, hi = ci
    if lo is None:
        return "undetermined"
    return "calibrated" if lo <= 1.0 <= hi else ("under-dispersed" if lo > 1.0 else "over-dispersed")


def _mean(runs_stats: list, key: str) -> np.ndarray:
    return np.mean([s[key] for s in runs_stats], axis=0)


def _train_ratio(var_pred: list, train_variances: list | None):
    """Mean over runs of var(p)/var(y_train), or None when a run's training variance is unknown."""
    if not train_variances or any(t is None or not t > 0 for t in train_variances):
        return None
    return float(np.mean([vp / t for vp, t in zip(var_pred, train_variances)]))


def diagnose(runs: list[FlightSums], train_variances: list | None = None, seed: int = 0) -> dict:
    """The diagnosis of one run, or of several seeds (point values are seed means; the interval
    of b resamples the same flights for every seed). `train_variances`: var(y_train) per run (km²)."""
    point = [r.point() for r in runs]
    mean = {k: float(np.mean([p[k] for p in point])) for k in point[0]}
    rho, v, bias = mean["rho"], mean["variance_ratio"], mean["bias"]
    slope_ci = percentile_interval(replicates(runs, lambda st: _mean(st, "calibration_slope"), seed=seed))
    return {
        "r2": mean["r2"],
        "variance_ratio": v,
        "rho": rho,
        "bias": bias,
        "calibration_slope": mean["calibration_slope"],
        "calibration_slope_ci": list(slope_ci),
        "signal": float(np.mean([p["rho"] ** 2 for p in point])),
        "dispersion_error": float(np.mean([(p["rho"] - np.sqrt(p["variance_ratio"])) ** 2 for p in point])),
        "bias_squared": float(np.mean([p["bias"] ** 2 for p in point])),
        "r2_at_unit_variance": float(np.mean([2 * p["rho"] - 1 - p["bias"] ** 2 for p in point])),
        "rho_within_flight": mean["rho_within_flight"],
        "r2_within_flight": mean["r2_within_flight"],
        "variance_ratio_train": _train_ratio([p["var_pred"] for p in point], train_variances),
        "verdict": verdict(slope_ci),
        "interval_method": runs[0].method,
        "n_units": int(len(np.unique(np.concatenate([r.units for r in runs])))),
    }
