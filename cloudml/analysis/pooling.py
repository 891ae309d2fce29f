"""Replicates: what one seed of one level contributes to a table. A run of an ordinary split is its
own replicate; the fold runs of a leave-one-flight-out sweep (`data.split.kind=cv`) are pooled
into one: each sample predicted once, by the job that held its flight out, and every number
computed over all of them. Folds are never averaged as if they were seeds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cloudml.analysis import tradeoff
from cloudml.analysis.evidence import RunEvidence
from cloudml.analysis.flightstats import FlightSums
from cloudml.analysis.scores import regression_scores

POOLED_COLUMNS = ("folds_total", "folds_completed", "pooled_from")


def _stability(folds: pd.DataFrame) -> tuple:
    """(stability, reason) of a pool: unstable when any fold's training was."""
    for run in folds.itertuples():
        if run.status == "diverged" or run.stability in ("unstable", "diverged"):
            return "unstable", f"fold {run.fold}: {run.stability_reason or run.status}"
    return "stable", f"all {len(folds)} folds stable"


def _pool(key, folds: pd.DataFrame, preds: dict, n_folds: int) -> tuple[dict, dict | None]:
    """The replicate row of one (setting, seed) and its pooled predictions (None without any)."""
    done = folds[(folds["status"] == "completed") & folds["path"].isin(list(preds))].sort_values("fold")
    first = folds.iloc[0].to_dict()
    row = {**first, "path": f"pooled:{key}", "fold": None, "folds_total": n_folds, "folds_completed": len(done),
           "pooled_from": list(folds.sort_values("fold")["path"])}  # fmt: skip
    if done.empty:
        counts = folds["status"].value_counts()
        row["status"] = counts.index[0] if len(counts) == 1 else "running"
        return row, None
    arrays = {k: np.concatenate([preds[p][k] for p in done["path"]]) for k in ("pred", "target")}
    if all("flight" in preds[p] for p in done["path"]):
        arrays["flight"] = np.concatenate([preds[p]["flight"] for p in done["path"]])
    row.update(regression_scores(arrays["pred"], arrays["target"]))
    row.update(tradeoff.run_tradeoff(arrays["pred"], arrays["target"]))
    stability, reason = _stability(folds[folds["status"].isin(["completed", "diverged"])])
    row.update(status="completed", stability=stability, stability_reason=reason,
               avg_base_loss=done["avg_base_loss"].mean(), avg_var_loss=done["avg_var_loss"].mean(),
               val_drift=bool(done["val_drift"].fillna(False).astype(bool).any()),
               seconds_per_epoch=done["seconds_per_epoch"].median(), diverged_epoch=None)  # fmt: skip
    return row, arrays


def replicates(runs: pd.DataFrame, preds: dict, n_folds: dict) -> tuple[pd.DataFrame, dict]:
    """(one row per replicate, pooled predictions per replicate path). `n_folds`: data file path →
    its number of flights (= folds of a complete leave-one-flight-out sweep)."""
    single = runs[runs["split"] != "cv"]
    cv = runs[runs["split"] == "cv"]
    rows = single.assign(folds_total=None, folds_completed=None, pooled_from=None).to_dict("records")
    arrays = {p: preds[p] for p in single["path"] if p in preds}
    if len(cv):
        keys = cv.apply(lambda r: ",".join([*(f"{k}={v}" for k, v in sorted(r["setting"].items())), f"seed={r['seed']}"]), axis=1)
        for key, folds in cv.groupby(keys, sort=True):
            row, pooled = _pool(key, folds, preds, n_folds.get(folds.iloc[0]["data_path"], int(folds["fold"].max()) + 1))
            rows.append(row)
            if pooled is not None:
                arrays[row["path"]] = pooled
    return pd.DataFrame(rows, columns=[*runs.columns, *POOLED_COLUMNS]), arrays


def per_flight(reps: pd.DataFrame, arrays: dict, factor_column: str, flight_names: dict) -> pd.DataFrame:
    """Every flight's own n, R², bias (km) and variance ratio per replicate; a flight whose fold has
    no completed run yet reads [pending]."""
    rows = []
    for rep in reps.to_dict("records"):
        a = arrays.get(rep["path"])
        seen = set()
        if a is not None and "flight" in a:
            for fid in np.unique(a["flight"]):
                m = a["flight"] == fid
                p, y = a["pred"][m], a["target"][m]
                seen.add(int(fid))
                rows.append({factor_column: rep[factor_column], "seed": rep["seed"], "flight": flight_names.get(int(fid), int(fid)),
                             "n": int(m.sum()), "r2": 1 - np.mean((p - y) ** 2) / np.var(y) if np.var(y) > 0 else np.nan,
                             "bias_km": float(p.mean() - y.mean()),
                             "variance_ratio": float(np.var(p) / np.var(y)) if np.var(y) > 0 else np.nan, "status": "completed"})  # fmt: skip
        for fid in sorted(set(flight_names) - seen) if rep.get("folds_total") else []:
            rows.append({factor_column: rep[factor_column], "seed": rep["seed"], "flight": flight_names[fid], "n": None,
                         "r2": "[pending]", "bias_km": "[pending]", "variance_ratio": "[pending]", "status": "pending"})  # fmt: skip
    return pd.DataFrame(rows, columns=[factor_column, "seed", "flight", "n", "r2", "bias_km", "variance_ratio", "status"])


def evidence_of(reps: pd.DataFrame, arrays: dict, runs_evidence: dict) -> dict:
    """Replicate path → RunEvidence: a run's own, or the pooled predictions of its folds (var(y_train):
    the mean over its folds)."""
    out = {}
    for rep in reps.to_dict("records"):
        path = rep["path"]
        if not rep.get("pooled_from"):
            if path in runs_evidence:
                out[path] = runs_evidence[path]
        elif path in arrays:
            a = arrays[path]
            train = [runs_evidence[p].train_variance for p in rep["pooled_from"] if p in runs_evidence]
            known = [t for t in train if t is not None]
            out[path] = RunEvidence(FlightSums.of(a["pred"], a["target"], a.get("flight")),
                                    float(np.mean(known)) if known else None)  # fmt: skip
    return out
