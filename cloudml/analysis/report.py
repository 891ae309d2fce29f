"""Analyse one λ sweep end to end: Table 2, the collapse diagnosis, paired comparisons with λ = 0,
the selection of λ, the decision and the findings, written into ``results_dir``.

Reads only run files (summary.json, history.csv, predictions.npz, data.json, split.npz,
normalization.json) and the HDF5 data for the baselines.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cloudml.analysis import comparisons, findings, selection, tradeoff
from cloudml.analysis.baselines import baselines_for
from cloudml.analysis.diagnosis import diagnose
from cloudml.analysis.evidence import (check_predictions, completed_predictions, read_all_predictions, read_specs,
                                       run_evidence, tradeoff_columns)  # fmt: skip
from cloudml.analysis.flightstats import BOOTSTRAP_METHOD
from cloudml.analysis.levels import summarise_levels
from cloudml.analysis.outputs import write_outputs
from cloudml.analysis.runs import load_sweep, warn
from cloudml.analysis.stats import INTERVAL_METHOD
from cloudml.rundir import Verdicts

FACTOR = "variance_lambda"


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
        warn(f"runs use {len(results)} different data/split combinations; Table 2 baselines are "
             "those of the split most runs used")  # fmt: skip
        main["other_splits"] = results[1:]
    main["oracle_r2"] = groups[0][0].oracle_r2
    return main


def run_diagnoses(runs: pd.DataFrame, evidence: dict) -> list:
    """Each run's own collapse diagnosis (None without readable predictions)."""
    return [diagnose([evidence[p].sums], [evidence[p].train_variance]) if p in evidence else None for p in runs["path"]]


def analyze_sweep(sweep_root: Path, results: Path, cfg: dict, selected_path: Path) -> tuple[dict, str]:
    """Analyse ``sweep_root`` and write every result file into ``results``; return the summary and
    the text analyze.py prints."""
    verdicts = Verdicts.from_config(cfg.get("verdicts"))
    sweep = load_sweep(sweep_root, verdicts)
    specs, missing = read_specs(sweep)
    arrays = read_all_predictions(sweep)
    sweep.runs[list(tradeoff.FIELDS)] = tradeoff_columns(sweep, arrays)
    check_predictions(sweep, arrays, specs)
    evidence = run_evidence(sweep, arrays)
    sweep.runs["diagnosis"] = run_diagnoses(sweep.runs, evidence)
    base = split_baselines(specs, missing, results / "baselines_cache.json", cfg["baselines"]["memory_budget_mb"])

    per_lambda = summarise_levels(sweep.runs, FACTOR, cfg["lambdas"], evidence)
    compared = comparisons.compare_all(sweep.runs, FACTOR, list(per_lambda[FACTOR]), 0.0, evidence)
    chosen = selection.select_lambda(per_lambda)
    crit = selection.success_criteria(per_lambda, cfg["criteria"]["min_r2"], cfg["criteria"]["min_variance_ratio"])
    decided = selection.decision(crit, comparisons.by_level(compared, FACTOR))
    summary = {
        "sweep_dir": str(sweep_root),
        "lambdas": [float(x) for x in cfg["lambdas"]],
        "rows": sweep.runs.to_dict("records"),
        "by_lambda": per_lambda.to_dict("records"),
        "comparisons": compared,
        "selected": chosen,
        "criteria": crit,
        "decision_matrix": selection.decision_matrix(per_lambda, cfg["decision_matrix"]["min_r2"],
                                                     cfg["decision_matrix"]["variance_ratio_range"]),  # fmt: skip
        "decision": decided["decision"],
        "decision_detail": decided,
        "findings": findings.findings(per_lambda, chosen["variance_lambda"], comparisons.by_level(compared, FACTOR),
                                      base, verdicts.collapse_variance_ratio),  # fmt: skip
        "baselines": base,
        "bayes_reference": base.get("oracle"),
        "tradeoff": {
            "method": tradeoff.METHOD,
            "by_lambda": per_lambda[[FACTOR, "val_r2", "val_variance_ratio", "tradeoff_r2_at_unit_variance"]].to_dict("records"),
            "curve": "R² = 2ρ√v − v − β² for the selected λ's seed-mean ρ = corr(pred, y); R² = v for calibrated predictors",
        },
        "theory": tradeoff.THEORY,
        "verdicts": vars(verdicts),
        "interval_method": INTERVAL_METHOD,
        "bootstrap_method": BOOTSTRAP_METHOD,
        "broken_runs": sweep.broken,
    }
    preds = completed_predictions(sweep, arrays, FACTOR)
    return summary, write_outputs(summary, sweep, per_lambda, preds, results, selected_path)
