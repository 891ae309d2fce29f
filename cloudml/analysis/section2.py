"""Section 2: the λ sweep. Table 2, the paired comparisons with λ = 0, the selection of λ, the
decision and the findings, written as section2_* files and the selected loss config."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cloudml.analysis import comparisons, figures, findings, selection, table2, tradeoff
from cloudml.analysis.factors import order
from cloudml.analysis.flightstats import BOOTSTRAP_METHOD
from cloudml.analysis.levels import summarise_levels
from cloudml.analysis.outputs import baseline_lines, distribution_panels, load_histories, strict_json, write_selected_config
from cloudml.analysis.stats import INTERVAL_METHOD
from cloudml.analysis.study import Study
from cloudml.atomic import write_text
from cloudml.rundir import Verdicts

PREFIX = "section2_"
COLUMN = "variance_lambda"


def summarise(study: Study, cfg: dict, verdicts: Verdicts) -> tuple[dict, pd.DataFrame]:
    """The Section 2 summary (section2_summary.json) and the per-λ table it is built on."""
    reps = study.replicates
    levels = order("loss.variance_lambda", reps[COLUMN].dropna(), [float(x) for x in cfg["lambdas"]])
    per_lambda = summarise_levels(reps, COLUMN, levels, [float(x) for x in cfg["lambdas"]], study.evidence)
    compared = comparisons.compare_all(reps, COLUMN, levels, 0.0, study.evidence)
    by_lambda = comparisons.by_level(compared, COLUMN)
    chosen = selection.select_lambda(per_lambda)
    crit = selection.success_criteria(per_lambda, cfg["criteria"]["min_r2"], cfg["criteria"]["min_variance_ratio"])
    decided = selection.decision(crit, by_lambda)
    summary = {
        "sweep_dir": str(study.root),
        "factor": study.factor,
        "lambdas": [float(x) for x in cfg["lambdas"]],
        "rows": study.runs.to_dict("records"),
        **({"pooled": reps[reps["folds_total"].notna()].to_dict("records")} if study.pooled else {}),
        "by_lambda": per_lambda.to_dict("records"),
        "comparisons": compared,
        "selected": chosen,
        "criteria": crit,
        "decision_matrix": selection.decision_matrix(per_lambda, cfg["decision_matrix"]["min_r2"],
                                                     cfg["decision_matrix"]["variance_ratio_range"]),  # fmt: skip
        "decision": decided["decision"],
        "decision_detail": decided,
        "findings": findings.findings(per_lambda, chosen["variance_lambda"], by_lambda, study.baselines,
                                      verdicts.collapse_variance_ratio),  # fmt: skip
        "baselines": study.baselines,
        "bayes_reference": study.baselines.get("oracle"),
        "tradeoff": {
            "method": tradeoff.METHOD,
            "by_lambda": per_lambda[[COLUMN, "val_r2", "val_variance_ratio", "tradeoff_r2_at_unit_variance"]].to_dict("records"),
            "curve": "R² = 2ρ√v − v − β² for the selected λ's seed-mean ρ = corr(pred, y); R² = v for calibrated predictors",
        },
        "theory": tradeoff.THEORY,
        "verdicts": vars(verdicts),
        "interval_method": INTERVAL_METHOD,
        "bootstrap_method": BOOTSTRAP_METHOD,
        "broken_runs": study.broken,
    }
    return summary, per_lambda


def _tradeoff_reference(per_lambda: pd.DataFrame, selected) -> dict | None:
    """The selected λ's seed-mean ρ and rescaled R², which the trade-off figure draws its curve for."""
    row = per_lambda[per_lambda[COLUMN] == selected]
    if selected is None or row.empty or row.iloc[0]["diagnosis"] is None:
        return None
    d = row.iloc[0]["diagnosis"]
    return {"variance_lambda": selected, "rho": d["rho"], "bias": d["bias"],
            "r2_at_unit_variance": row.iloc[0]["tradeoff_r2_at_unit_variance"]}  # fmt: skip


def completed_predictions(study: Study) -> dict:
    """(pred, target) of every completed replicate per λ, for Figure 2."""
    out: dict = {}
    for rep in study.replicates.to_dict("records"):
        if rep["status"] == "completed" and rep["path"] in study.arrays:
            out.setdefault(rep[COLUMN], []).append((study.arrays[rep["path"]]["pred"], study.arrays[rep["path"]]["target"]))
    return out


def write(study: Study, summary: dict, per_lambda: pd.DataFrame, results: Path, selected_path: Path) -> str:
    """Write Table 2, the summary, the figures and the selected loss config; return the stdout text."""
    split = summary["baselines"].get("split")
    pooled = ", leave-one-flight-out folds pooled" if study.pooled else ""
    title = f"Table 2. Effect of the variance weight λ ({study.root.name}{f', split {split}' if split else ''}{pooled})"
    display = table2.table2_display(per_lambda)
    notes = [*baseline_lines(summary["baselines"]), *table2.notes(summary["theory"], summary["verdicts"])]
    txt = table2.table2_text(display, title, notes)
    write_text(results / f"{PREFIX}table2.csv", table2.table2_csv(per_lambda, study.replicates).to_csv(index=False))
    write_text(results / f"{PREFIX}table2.txt", txt)
    write_text(results / f"{PREFIX}table2.md", table2.table2_markdown(display, title, notes))
    write_text(results / f"{PREFIX}summary.json", strict_json(summary))
    if study.pooled:
        write_text(results / f"{PREFIX}per_flight.csv", study.per_flight().to_csv(index=False))
    figures.distributions(distribution_panels(per_lambda, completed_predictions(study), COLUMN), results / f"{PREFIX}distributions.png")
    figures.training_curves(load_histories(study.root, study.runs, COLUMN), results / f"{PREFIX}training_curves.png")
    chosen = summary["selected"]
    figures.tradeoff(study.replicates, _tradeoff_reference(per_lambda, chosen["variance_lambda"]), results / f"{PREFIX}tradeoff.png")
    wrote_config = write_selected_config(selected_path, chosen, study.root)
    detail = summary["decision_detail"]
    lines = [txt, f"Selected: {chosen['reason']}", f"Decision: {summary['decision']} ({detail['reason']}; {detail['note']})",
             "Findings:", *(f"  {i}. {f}" for i, f in enumerate(summary["findings"], 1))]  # fmt: skip
    if study.broken:
        lines.append(f"Broken runs ({len(study.broken)}): see broken_runs in {PREFIX}summary.json")
    lines += [wrote_config, f"Results in {results}"]
    return "\n".join(lines)
