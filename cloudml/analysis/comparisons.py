"""Each level against a reference level (every λ > 0 against λ = 0), by the paired difference of R².

Seeds share initialisation and batch order across levels, so runs are paired by seed:
- with two or more paired seeds: the mean of the per-seed differences and its Student-t 95 %
  interval (n − 1 degrees of freedom);
- with one seed: a flight-cluster bootstrap of the difference, both runs scored on the same
  resampled validation flights.
"Beats" means the interval lies above 0, "worse" that it lies below; otherwise the difference is
within noise.
"""
from __future__ import annotations

import pandas as pd

from cloudml.analysis.flightstats import percentile_interval, replicates
from cloudml.analysis.stats import t_interval

PAIRED_METHOD = "paired difference over seeds: mean of the per-seed ΔR², 95 % Student-t interval (n − 1 df)"


def _outcome(ci) -> str | None:
    lo, hi = ci
    if lo is None:
        return None
    return "beats" if lo > 0 else ("worse" if hi < 0 else "within noise")


def _by_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """A level's runs indexed by seed; of two runs with one seed (one configuration run twice
    under different directory names) the first is kept, so pairs stay one to one."""
    runs = runs.set_index("seed")
    return runs[~runs.index.duplicated()]


def compare(runs: pd.DataFrame, factor: str, level, reference, evidence: dict) -> dict:
    """ΔR² = R²(level) − R²(reference) over the seeds both completed, with its interval."""
    done = runs[runs["status"] == "completed"]
    mine, ref = (_by_seed(done[done[factor] == lv]) for lv in (level, reference))
    seeds = sorted(set(mine.index.dropna()) & set(ref.index.dropna()))
    out = {factor: level, "reference": reference, "n_pairs": len(seeds), "seeds": [int(s) for s in seeds],
           "delta_r2": None, "ci": [None, None], "method": None, "outcome": None}  # fmt: skip
    if len(seeds) >= 2:
        diffs = mine.loc[seeds, "val_r2"].to_numpy(float) - ref.loc[seeds, "val_r2"].to_numpy(float)
        out.update(delta_r2=float(diffs.mean()), ci=list(t_interval(diffs)), method=PAIRED_METHOD)
    elif len(seeds) == 1:
        a, b = evidence.get(mine.loc[seeds[0], "path"]), evidence.get(ref.loc[seeds[0], "path"])
        out["delta_r2"] = float(mine.loc[seeds[0], "val_r2"] - ref.loc[seeds[0], "val_r2"])
        if a is not None and b is not None:
            draws = replicates([a.sums, b.sums], lambda st: st[0]["r2"] - st[1]["r2"])
            out.update(ci=list(percentile_interval(draws)), method=f"one seed: {a.sums.method}")
    out["outcome"] = _outcome(out["ci"])
    return out


def compare_all(runs: pd.DataFrame, factor: str, levels, reference, evidence: dict) -> list[dict]:
    """The comparison of every other level that has completed runs with `reference`."""
    done = set(runs.loc[runs["status"] == "completed", factor])
    if reference not in done:
        return []
    return [compare(runs, factor, lv, reference, evidence) for lv in levels if lv != reference and lv in done]


def by_level(comparisons: list[dict], factor: str) -> dict:
    return {c[factor]: c for c in comparisons}
