"""Analyse one sweep end to end: find the factor it varies, gather the runs (pooling
leave-one-flight-out folds), and write the analysis of that factor into ``results_dir``:
Section 2 for `loss.variance_lambda`, Section 3 for `model`, the same table for any other."""
from __future__ import annotations

from pathlib import Path

from cloudml.analysis import factors, section2, section3
from cloudml.analysis.runs import load_sweep, warn
from cloudml.analysis.study import gather
from cloudml.rundir import Verdicts


def analyze_sweep(sweep_root: Path, results: Path, cfg: dict, selected_path: Path) -> tuple[dict, str]:
    """Analyse ``sweep_root`` and write every result file into ``results``; return the summary and
    the text analyze.py prints."""
    verdicts = Verdicts.from_config(cfg.get("verdicts"))
    sweep = load_sweep(sweep_root, verdicts)
    factor, runs, note = factors.select(sweep.runs, cfg.get("factor"), cfg.get("fixed") or {}, factors.latest_launch(sweep_root))
    if note:
        warn(note)
    study = gather(sweep, runs, factor, results / "baselines_cache.json", cfg["baselines"]["memory_budget_mb"])
    if factor == factors.LAMBDA:
        summary, per_lambda = section2.summarise(study, cfg, verdicts)
        return summary, section2.write(study, summary, per_lambda, results, selected_path)
    summary, per_level = section3.summarise(study, verdicts)
    return summary, section3.write(study, summary, per_level, results)
