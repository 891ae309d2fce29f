"""Student-t intervals on a mean over seeds, without scipy.

The t CDF for integer degrees of freedom has a closed form (Abramowitz & Stegun 26.7.3-4);
the quantile is found by bisection on it, so any number of seeds is exact.
"""
from __future__ import annotations

import math

import numpy as np

INTERVAL_METHOD = (
    "95 % Student-t interval on the mean over seeds: mean ± t(0.975, n−1)·s/√n, "
    "s the sample standard deviation (ddof=1); none for a single seed"
)


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| ≤ t) for Student's t with integer ``df`` ≥ 1 and t ≥ 0."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):  # 1 + (2/3)c² + (2·4)/(3·5)c⁴ + ...
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0
    for k in range(1, df // 2):  # 1 + (1/2)c² + (1·3)/(2·4)c⁴ + ...
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def t_quantile(p: float, df: int) -> float:
    """The p-quantile (p > 0.5) of Student's t with integer ``df`` ≥ 1."""
    target, lo, hi = 2 * p - 1, 0.0, 1.0
    while t_cdf_two_sided(hi, df) < target:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf_two_sided(mid, df) < target else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def t_interval(values, level: float = 0.95) -> tuple[float, float] | tuple[None, None]:
    """Two-sided ``level`` Student-t interval on the mean of finite ``values``."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None, None
    half = t_quantile(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)
