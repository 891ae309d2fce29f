"""Everything an analysis of one factor is computed from, gathered once: the runs, their replicates
(leave-one-flight-out folds pooled), each replicate's predictions and evidence, and the baselines."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cloudml.analysis import pooling
from cloudml.analysis.baselines import SplitSpec, baselines_for, pooled_baselines
from cloudml.analysis.diagnosis import diagnose
from cloudml.analysis.evidence import check_predictions, read_all_predictions, read_specs, run_evidence, tradeoff_columns
from cloudml.analysis.factors import column
from cloudml.analysis.runs import Sweep, warn
from cloudml.analysis.tradeoff import FIELDS
from cloudml.errors import CloudMLError


@dataclass
class Study:
    root: Path
    factor: str  # the setting key, e.g. loss.variance_lambda or model
    column: str  # the table column holding its level, e.g. variance_lambda
    runs: pd.DataFrame  # one row per job directory (with its own diagnosis)
    replicates: pd.DataFrame  # one row per seed of a level: a run, or pooled folds
    evidence: dict  # replicate path -> RunEvidence
    arrays: dict  # replicate path -> pred, target (km), flight
    baselines: dict
    flight_names: dict = field(default_factory=dict)  # flight id -> name (leave-one-flight-out sweeps)
    broken: list = field(default_factory=list)

    @property
    def pooled(self) -> bool:
        return bool(self.replicates["folds_total"].notna().any())

    def per_flight(self) -> pd.DataFrame:
        """Every flight's own n, R², bias and variance ratio per replicate (leave-one-flight-out)."""
        return pooling.per_flight(self.replicates, self.arrays, self.column, self.flight_names)


def diagnoses(table: pd.DataFrame, evidence: dict) -> list:
    """Each row's own collapse diagnosis (None without readable predictions)."""
    return [diagnose([evidence[p].sums], [evidence[p].train_variance]) if p in evidence else None for p in table["path"]]


def _flights(specs: dict, runs: pd.DataFrame) -> tuple[dict, dict]:
    """(data path → number of flights, flight id → name) of the data files of leave-one-flight-out runs."""
    from cloudml.data.schema import DataKeys, read_metadata

    counts, names = {}, {}
    for path in set(runs.loc[runs["split"] == "cv", "path"]):
        spec = specs.get(path)
        if spec is None or str(spec.data_path) in counts:
            continue
        try:
            meta = read_metadata(spec.data_path, DataKeys(**spec.keys))
        except CloudMLError as exc:
            warn(f"{spec.data_path}: cannot count its flights ({exc}); folds are counted from the runs")
            continue
        counts[str(spec.data_path)] = len(meta.flight_names)
        names.update(meta.flight_names)
    return counts, names


def split_baselines(specs: dict, missing: dict, cache_file: Path, budget_mb: float) -> dict:
    """Baselines for the split most runs used (+ ``other_splits`` if runs differ)."""
    if not specs:
        reason = next(iter(missing.values()), "no runs")
        return {"available": False, "reason": f"no run records its data and split ({reason})"}
    by_split: dict[tuple, list] = {}
    for s in specs.values():
        by_split.setdefault((str(s.data_path), s.split_hash), []).append(s)
    groups = sorted(by_split.values(), key=len, reverse=True)
    results = [{**baselines_for(g[0], cache_file, budget_mb), "n_runs": len(g)} for g in groups]
    for r in results:
        if not r.get("available"):
            warn(f"baselines unavailable: {r['reason']}")
    main = results[0]
    if len(results) > 1:
        warn(f"runs use {len(results)} different data/split combinations; the baselines are those of the split most runs used")
        main["other_splits"] = results[1:]
    main["oracle_r2"] = groups[0][0].oracle_r2
    return main


def fold_baselines(specs: dict, runs: pd.DataFrame, cache_file: Path, budget_mb: float) -> dict:
    """Baselines pooled over the folds of a leave-one-flight-out sweep (one fit per held-out flight)."""
    folds: dict[str, SplitSpec] = {}
    for path in runs.loc[runs["split"] == "cv", "path"]:
        if path in specs:
            folds.setdefault(specs[path].split_hash, specs[path])
    if not folds:
        return {"available": False, "reason": "no fold records its data and split"}
    out = pooled_baselines(sorted(folds.values(), key=lambda s: int(s.val_index.min())), cache_file, budget_mb)
    if not out.get("available"):
        warn(f"baselines unavailable: {out['reason']}")
    out["oracle_r2"] = next(iter(folds.values())).oracle_r2
    return out


def gather(sweep: Sweep, runs: pd.DataFrame, factor: str, cache_file: Path, budget_mb: float) -> Study:
    """The study of `factor` over `runs` (a selection of `sweep.runs`)."""
    specs, missing = read_specs(sweep)
    preds = read_all_predictions(sweep)
    runs = runs.copy()
    runs[list(FIELDS)] = tradeoff_columns(Sweep(sweep.root, runs), preds)
    check_predictions(Sweep(sweep.root, runs), preds, specs)
    runs["data_path"] = runs["path"].map(lambda p: str(specs[p].data_path) if p in specs else None)
    per_run = run_evidence(sweep, preds)
    runs["diagnosis"] = diagnoses(runs, per_run)
    counts, names = _flights(specs, runs)
    reps, arrays = pooling.replicates(runs, preds, counts)
    evidence = pooling.evidence_of(reps, arrays, per_run)
    reps["diagnosis"] = diagnoses(reps, evidence)
    chosen = {p: specs[p] for p in runs["path"] if p in specs}
    if (runs["split"] == "cv").any():
        base = fold_baselines(chosen, runs, cache_file, budget_mb)
    else:
        base = split_baselines(chosen, missing, cache_file, budget_mb)
    return Study(sweep.root, factor, column(factor), runs, reps, evidence, arrays, base, names, sweep.broken)
