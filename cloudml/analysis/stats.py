"""Student-t intervals on a mean over seeds."""
from __future__ import annotations

import math

import numpy as np

INTERVAL_METHOD = (
    "95 % Student-t interval on the mean over seeds: mean ± t(0.975, n−1)·s/√n, "
    "s the sample standard deviation (ddof=1); none for a single seed"
)


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.special import stdtrit  # scipy.special, not scipy.stats: a third of the import time

    return float(stdtrit(df, p))


def t_interval(values, level: float = 0.95) -> tuple[float, float] | tuple[None, None]:
    """Two-sided ``level`` Student-t interval on the mean of finite ``values``."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None, None
    half = t_quantile(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)
