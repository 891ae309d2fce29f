"""One row per level of the factor under study (λ for Table 2): the seeds that completed, their
means, the uncertainty of R², status, stability, and the collapse diagnosis.

Uncertainty of a level's R²: with several seeds, the Student-t interval of the seed mean (and
its standard error s/√n); with one seed, the flight-cluster bootstrap of the validation set
(percentile interval; standard error = the replicates' standard deviation).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cloudml.analysis.diagnosis import diagnose
from cloudml.analysis.evidence import RunEvidence
from cloudml.analysis.flightstats import percentile_interval, replicates
from cloudml.analysis.stats import INTERVAL_METHOD, t_interval

R2_INTERVAL_RULE = ("with several seeds, a 95 % Student-t interval on the seed mean; with one seed, a flight-cluster "
                    "bootstrap of the validation flights (95 % percentile)")  # fmt: skip
MEAN_COLUMNS = ("val_r2", "val_variance_ratio", "avg_base_loss", "avg_var_loss", "tradeoff_r2_at_unit_variance")


def _instability(run) -> str | None:
    """Why one completed/diverged run is unstable, or None if it is stable."""
    if run.status == "diverged" or run.stability == "diverged":
        return f"diverged at epoch {int(run.diverged_epoch)}" if pd.notna(run.diverged_epoch) else "diverged"
    if run.stability == "unstable":
        return run.stability_reason if isinstance(run.stability_reason, str) and run.stability_reason else "unstable"
    return None


def _status_text(group: pd.DataFrame) -> str:
    """'pending', one status, or counts such as '2 completed, 1 failed'."""
    if group.empty:
        return "pending"
    counts = group["status"].value_counts()
    return counts.index[0] if len(counts) == 1 else ", ".join(f"{n} {s}" for s, n in counts.items())


def _stability(group: pd.DataFrame) -> tuple[bool | None, str]:
    """(stable?, Table text) of a level over its completed and diverged runs."""
    outcome = group[group["status"].isin(["completed", "diverged"])]
    if outcome.empty:
        return None, f"[{_status_text(group)}]"
    problems = [(run.seed, msg) for run in outcome.itertuples() if (msg := _instability(run))]
    if not problems:
        return True, "Stable"
    if len(outcome) == 1:
        return False, f"Unstable ({problems[0][1]})"
    # The table names how many seeds and the first reason; each run's own reason is in its CSV row.
    more = f"; {len(problems) - 1} more in the per-seed rows" if len(problems) > 1 else ""
    return False, f"Unstable ({len(problems)} of {len(outcome)} seeds; seed {problems[0][0]}: {problems[0][1]}{more})"


def uncertainty(done: pd.DataFrame, runs: list[RunEvidence], key: str = "r2") -> dict:
    """Interval, standard error and method for the level mean of `key` (r2 or variance_ratio)."""
    column = {"r2": "val_r2", "variance_ratio": "val_variance_ratio"}[key]
    values = done[column].to_numpy(float)
    if len(values) >= 2:
        se = float(values.std(ddof=1) / np.sqrt(len(values)))
        return {"ci": t_interval(values), "se": se, "method": INTERVAL_METHOD}
    if len(values) == 1 and len(runs) == 1:
        draws = replicates([runs[0].sums], lambda st: st[0][key])
        return {"ci": percentile_interval(draws), "se": float(np.nanstd(draws, ddof=1)), "method": runs[0].sums.method}
    return {"ci": (None, None), "se": None, "method": None}


def _coverage(done: pd.DataFrame) -> str | None:
    """'15 of 16 flights': what the pooled leave-one-flight-out numbers cover (the least of its seeds), else None."""
    if "folds_total" not in done or done["folds_total"].isna().all():
        return None
    least = done.loc[done["folds_completed"].idxmin()] if len(done) else None
    return None if least is None else f"{int(least['folds_completed'])} of {int(least['folds_total'])} flights"


def summarise_level(factor: str, level, group: pd.DataFrame, in_program: bool, evidence: dict) -> dict:
    """Numbers for one level: means over completed runs, uncertainty, status, stability, diagnosis."""
    done = group[group["status"] == "completed"]
    runs = [evidence[p] for p in done["path"] if p in evidence]
    stable, stability = _stability(group)
    r2, ratio = uncertainty(done, runs, "r2"), uncertainty(done, runs, "variance_ratio")
    diagnosis = None
    if runs and len(runs) == len(done):
        diagnosis = diagnose([r.sums for r in runs], [r.train_variance for r in runs])
    params = done["parameters"].dropna() if "parameters" in done else pd.Series(dtype=float)
    epoch_s = done["seconds_per_epoch"].dropna() if "seconds_per_epoch" in done else pd.Series(dtype=float)
    return {
        factor: level,
        "in_program": in_program,
        "parameters": int(params.median()) if len(params) else None,
        "seconds_per_epoch": float(epoch_s.median()) if len(epoch_s) else None,
        "flights_covered": _coverage(done),
        "n_runs": len(group),
        "n_seeds": len(done),
        "seeds": sorted(int(s) for s in done["seed"].dropna()),
        "status": _status_text(group),
        "stable": stable,
        "stability": stability,
        "val_drift": bool(done["val_drift"].fillna(False).astype(bool).any()) if len(done) else None,
        **{c: float(done[c].mean()) if len(done) else np.nan for c in MEAN_COLUMNS},
        "val_r2_ci": r2["ci"], "val_r2_se": r2["se"], "val_r2_ci_method": r2["method"],
        "val_variance_ratio_ci": ratio["ci"],
        "diagnosis": diagnosis,
        "calibration_slope": None if diagnosis is None else diagnosis["calibration_slope"],
        "verdict": None if diagnosis is None else diagnosis["verdict"],
        "r2_within_flight": None if diagnosis is None else diagnosis["r2_within_flight"],
    }  # fmt: skip


def summarise_levels(runs: pd.DataFrame, factor: str, levels: list, program, evidence: dict) -> pd.DataFrame:
    """One row per level in `levels` (the program's ones included, missing ones `[pending]`)."""
    groups = dict(tuple(runs.groupby(factor))) if len(runs) else {}
    empty = runs.iloc[0:0]
    return pd.DataFrame([summarise_level(factor, lv, groups.get(lv, empty), lv in set(program), evidence) for lv in levels])
