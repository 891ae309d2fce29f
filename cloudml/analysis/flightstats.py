"""Whole-set statistics of predictions against targets, and their flight-cluster bootstrap.

Every number is computed from per-flight sums (n, Σp, Σy, Σp², Σy², Σpy), so a statistic has
one definition whether it is taken over the validation set (each flight once) or over a
bootstrap replicate (flights drawn with replacement: weights = how often each was drawn).
Samples of one flight are strongly autocorrelated, so flights, not samples, are the units
that are resampled. Variances are population variances (ddof = 0) throughout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOTSTRAP = 2000
LEVEL = 0.95
BOOTSTRAP_METHOD = (f"flight-cluster bootstrap: the validation flights resampled with replacement, "
                    f"B = {N_BOOTSTRAP}, {100 * LEVEL:g} % percentile interval")  # fmt: skip
SAMPLE_BOOTSTRAP_METHOD = (f"sample bootstrap (no flight ids, or a single flight: samples resampled with "
                           f"replacement, B = {N_BOOTSTRAP}; autocorrelated samples make it too narrow)")  # fmt: skip


def _sums(ids: np.ndarray, columns: tuple) -> tuple:
    units, inverse = np.unique(ids, return_inverse=True)
    return units, np.stack([np.bincount(inverse, weights=c, minlength=len(units)) for c in columns], axis=1)


@dataclass(frozen=True)
class FlightSums:
    """Per-unit sufficient statistics (units: flights, or samples when flights are unknown).

    `sums` is (units, 6): n, Σp, Σy, Σp², Σy², Σpy of p and y shifted by a common constant
    (every statistic here is invariant under it, and it keeps the sums well conditioned).
    """

    units: np.ndarray
    sums: np.ndarray
    by_flight: bool
    flight_sums: np.ndarray  # per flight (one row when flights are unknown): the point statistics' units

    @classmethod
    def of(cls, pred, target, flight=None, shift: float | None = None) -> "FlightSums":
        p, y = np.asarray(pred, float).ravel(), np.asarray(target, float).ravel()
        c = float(np.mean(y)) if shift is None else shift
        p, y = p - c, y - c
        columns = (np.ones_like(y), p, y, p * p, y * y, p * y)
        flights = np.asarray(flight).ravel() if flight is not None else np.zeros(len(y), int)
        by_flight = flight is not None and len(np.unique(flights)) >= 2
        units, sums = _sums(flights if by_flight else np.arange(len(y)), columns)
        return cls(units, sums, by_flight, _sums(flights, columns)[1])

    def point(self) -> dict:
        """The statistics over the whole set (within-flight ones over its flights)."""
        return {k: float(v[0]) for k, v in statistics(self.flight_sums).items()}

    @property
    def method(self) -> str:
        return BOOTSTRAP_METHOD if self.by_flight else SAMPLE_BOOTSTRAP_METHOD

    def aligned(self, units: np.ndarray) -> np.ndarray:
        """Sums on the rows of `units` (zeros for units this set lacks)."""
        out = np.zeros((len(units), 6))
        out[np.searchsorted(units, self.units)] = self.sums
        return out


def statistics(sums: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """R², variance ratio v, ρ, bias β, calibration slope b, and the within-flight ρ and R² from
    per-unit sums (units, 6), each unit counted `weights` times (B, units) -> arrays of shape (B,)."""
    w = np.ones((1, len(sums))) if weights is None else np.atleast_2d(weights)
    n, sp, sy, spp, syy, spy = (w @ sums).T
    mp, my = sp / n, sy / n
    var_p, var_y, cov = spp / n - mp**2, syy / n - my**2, spy / n - mp * my
    mse = (spp - 2 * spy + syy) / n
    # Within units: each unit's own means removed (only meaningful when units are flights).
    cnt = np.maximum(sums[:, 0], 1)
    within = np.stack([sums[:, 3] - sums[:, 1] ** 2 / cnt, sums[:, 4] - sums[:, 2] ** 2 / cnt,
                       sums[:, 5] - sums[:, 1] * sums[:, 2] / cnt], axis=1)  # fmt: skip
    wpp, wyy, wpy = (w @ within).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "r2": 1 - mse / var_y,
            "var_pred": var_p,
            "variance_ratio": var_p / var_y,
            "rho": cov / np.sqrt(var_p * var_y),
            "bias": (mp - my) / np.sqrt(var_y),
            "calibration_slope": cov / var_p,
            "rho_within_flight": wpy / np.sqrt(wpp * wyy),
            "r2_within_flight": 1 - (wpp - 2 * wpy + wyy) / wyy,
        }


def bootstrap_weights(n_units: int, n: int = N_BOOTSTRAP, seed: int = 0, chunk_cells: int = 2**22):
    """Chunks of (rows, n_units) multiplicities of units drawn with replacement, n rows in all
    (at most `chunk_cells` numbers at a time); the same draws for the same arguments."""
    rng = np.random.default_rng(seed)
    step = max(1, chunk_cells // max(1, n_units))
    for start in range(0, n, step):
        rows = min(step, n - start)
        drawn = rng.integers(0, n_units, size=(rows, n_units)) + n_units * np.arange(rows)[:, None]  # row r: its draws
        yield np.bincount(drawn.ravel(), minlength=rows * n_units).reshape(rows, n_units).astype(float)


def replicates(runs: list, combine, n: int = N_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """`combine(per-run statistics)` over `n` bootstrap replicates that resample the same units
    (flights) for every run of `runs` (FlightSums) at once: paired comparisons keep their pairing."""
    units = np.unique(np.concatenate([r.units for r in runs]))
    aligned = [r.aligned(units) for r in runs]
    return np.concatenate([combine([statistics(a, w) for a in aligned]) for w in bootstrap_weights(len(units), n, seed)])


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple:
    """The central `level` interval of the finite bootstrap values, or (None, None)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size < 10:
        return None, None
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
