"""Section 3 and any other factor: one row per level (for `model`, the architecture ablation's steps
in the program's order) with parameters, seconds per epoch, R² [interval], within-flight R²,
variance ratio, verdict, and the paired ΔR² to the previous step and to the first (`cnn`).
Written as section3_* files for `model`, as <factor>_* files for any other setting."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from cloudml.analysis import comparisons, figures, table2
from cloudml.analysis.factors import MODEL, MODEL_ORDER, order
from cloudml.analysis.findings import bayes_text, diagnosis_text
from cloudml.analysis.flightstats import BOOTSTRAP_METHOD
from cloudml.analysis.levels import R2_INTERVAL_RULE, summarise_levels
from cloudml.analysis.outputs import baseline_lines, load_histories, strict_json
from cloudml.analysis.stats import INTERVAL_METHOD
from cloudml.analysis.study import Study
from cloudml.atomic import write_text
from cloudml.rundir import Verdicts

PARTS = {"cnn_spatial": "spatial attention", "cnn_spatial_temporal": "temporal attention",
         "cnn_spatial_multiscale": "multi-scale temporal attention",
         "transformer": "one joint space-time transformer instead"}  # fmt: skip


def prefix(factor: str) -> str:
    """section3_ for the model ablation, else the setting's name as a file-name prefix."""
    return "section3_" if factor == MODEL else re.sub(r"[^A-Za-z0-9]+", "_", factor).strip("_") + "_"


def _label(level) -> str:
    return f"{level:g}" if isinstance(level, (int, float)) else str(level)


def _step_sentence(c: dict, column: str) -> str:
    """What one step added, by its paired ΔR², plainly when nothing beyond noise; a part's name only
    where the step is the program's own (the previous architecture of the ablation)."""
    level, ref = c[column], c["reference"]
    own_step = level in PARTS and ref in MODEL_ORDER and MODEL_ORDER.index(level) == MODEL_ORDER.index(ref) + 1
    part = f"+ {PARTS[level]}" if own_step else "from"
    if c["delta_r2"] is None:
        return f"{part} {_label(ref)} → {_label(level)}: no paired comparison (they share no completed seed)."
    ci = "" if c["ci"][0] is None else f" [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]"
    verdict = {"beats": "a gain beyond noise", "worse": "a loss beyond noise", "within noise": "nothing beyond noise",
               None: "no interval"}[c["outcome"]]  # fmt: skip
    return f"{part} {_label(ref)} → {_label(level)}: ΔR² = {c['delta_r2']:+.3f}{ci}, {verdict} ({c['method']})."


def summarise(study: Study, verdicts: Verdicts) -> tuple[dict, pd.DataFrame]:
    """The summary (<prefix>summary.json) and the per-level table."""
    reps, column = study.replicates, study.column
    program = list(MODEL_ORDER) if study.factor == MODEL else []
    levels = order(study.factor, reps[column].dropna(), program)
    per_level = summarise_levels(reps, column, levels, program, study.evidence)
    done = [lv for lv in levels if lv in set(reps.loc[reps["status"] == "completed", column])]
    previous = [comparisons.compare(reps, column, b, a, study.evidence) for a, b in zip(done, done[1:])]
    first = [comparisons.compare(reps, column, lv, done[0], study.evidence) for lv in done[1:]] if done else []
    per_level["delta_previous"] = per_level[column].map({c[column]: c for c in previous})
    per_level["delta_first"] = per_level[column].map({c[column]: c for c in first})
    findings = [_step_sentence(c, column) for c in previous]
    if len(done) > 1:
        best = per_level.loc[per_level["val_r2"].idxmax()]
        findings.append(f"Best: {_label(best[column])} (R² {best['val_r2']:.3f}); against {_label(done[0])}: "
                        + (_step_sentence(first[done.index(best[column]) - 1], column) if best[column] != done[0] else "it is the first level itself."))  # fmt: skip
        findings.append(f"{_label(best[column])}: {diagnosis_text(best['diagnosis'])} Context: {bayes_text(study.baselines)}.")
    summary = {
        "sweep_dir": str(study.root),
        "factor": study.factor,
        "rows": study.runs.to_dict("records"),
        **({"pooled": reps[reps["folds_total"].notna()].to_dict("records")} if study.pooled else {}),
        "by_level": per_level.to_dict("records"),
        "comparisons": {"previous_step": previous, "first_level": first},
        "findings": findings or ["Fewer than two levels have completed runs: nothing to compare yet."],
        "baselines": study.baselines,
        "bayes_reference": study.baselines.get("oracle"),
        "verdicts": vars(verdicts),
        "interval_method": INTERVAL_METHOD,
        "bootstrap_method": BOOTSTRAP_METHOD,
        "broken_runs": study.broken,
    }
    return summary, per_level


def _count(x) -> int | None:
    """A parameter count as an int (pandas turns a column with gaps into floats), or None."""
    return None if x is None or pd.isna(x) else int(x)


def _delta(c) -> str:
    if not isinstance(c, dict) or c["delta_r2"] is None:
        return ""
    return f"{c['delta_r2']:+.3f}" + ("" if c["ci"][0] is None else f" [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]")


def display(per_level: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
    """The table for readers: one row per level."""
    rows = []
    for s in per_level.to_dict("records"):
        d, pending = s["diagnosis"], f"[{s['status']}]"
        has = s["n_seeds"] > 0
        r2 = table2._with_interval(s["val_r2"], s["val_r2_ci"], ".3f") if has else pending
        if has and s.get("flights_covered"):
            r2 += f" ({s['flights_covered']})"
        rows.append({name: _label(s[column]), "Parameters": "" if _count(s["parameters"]) is None else f"{_count(s['parameters']):,}",
                     "s/epoch": "" if pd.isna(s["seconds_per_epoch"]) else f"{s['seconds_per_epoch']:.2f}", "R²": r2,
                     "Within-flight R²": f"{d['r2_within_flight']:.3f}" if d else ("n/a" if has else pending),
                     "Var. ratio (%)": f"{100 * s['val_variance_ratio']:.1f}" if has else pending,
                     "Verdict": d["verdict"] if d else ("n/a" if has else pending),
                     "ΔR² vs previous": _delta(s["delta_previous"]), "ΔR² vs first": _delta(s["delta_first"]),
                     "Stability": s["stability"], "Seeds": s["n_seeds"]})  # fmt: skip
    return pd.DataFrame(rows)


def csv_table(per_level: pd.DataFrame, column: str) -> pd.DataFrame:
    """The table for machines: numbers, [status] where a level has no completed run."""
    rows = []
    for s in per_level.to_dict("records"):
        d, c_prev, c_first = s["diagnosis"] or {}, s["delta_previous"], s["delta_first"]
        ci = s["val_r2_ci"] or (None, None)
        delta = lambda c, i: (c["delta_r2"] if i is None else c["ci"][i]) if isinstance(c, dict) else None  # noqa: E731
        rows.append({column: s[column], "parameters": _count(s["parameters"]), "seconds_per_epoch": s["seconds_per_epoch"],
                     "final_r2": s["val_r2"] if s["n_seeds"] else f"[{s['status']}]", "final_r2_ci_low": ci[0],
                     "final_r2_ci_high": ci[1], "final_r2_ci_method": s["val_r2_ci_method"],
                     "r2_within_flight": d.get("r2_within_flight"), "variance_ratio_pct": 100 * s["val_variance_ratio"] if s["n_seeds"] else None,
                     "calibration_slope": d.get("calibration_slope"), "verdict": d.get("verdict"), "stability": s["stability"],
                     "delta_r2_previous": delta(c_prev, None), "delta_r2_previous_ci_low": delta(c_prev, 0),
                     "delta_r2_previous_ci_high": delta(c_prev, 1), "delta_r2_first": delta(c_first, None),
                     "delta_r2_first_ci_low": delta(c_first, 0), "delta_r2_first_ci_high": delta(c_first, 1),
                     "flights_covered": s.get("flights_covered"), "n_seeds": s["n_seeds"], "status": s["status"]})  # fmt: skip
    return pd.DataFrame(rows, dtype=object)


def write(study: Study, summary: dict, per_level: pd.DataFrame, results: Path) -> str:
    """Write the table, the summary and the figure; return the stdout text."""
    pre, name = prefix(study.factor), ("model" if study.factor == MODEL else study.factor)
    what = "Table 3. Architecture ablation" if study.factor == MODEL else f"Effect of {study.factor}"
    split = summary["baselines"].get("split")
    pooled = ", leave-one-flight-out folds pooled" if study.pooled else ""
    title = f"{what} ({study.root.name}{f', split {split}' if split else ''}{pooled})"
    shown = display(per_level, study.column, name)
    notes = [*baseline_lines(summary["baselines"]), f"R² interval: {R2_INTERVAL_RULE}.",
             "ΔR²: paired difference to the previous row and to the first row (over seeds; one seed: flight bootstrap)."]  # fmt: skip
    text = table2.table2_text(shown, title, notes)
    table = "table3" if study.factor == MODEL else "table"
    write_text(results / f"{pre}{table}.csv", csv_table(per_level, study.column).to_csv(index=False))
    write_text(results / f"{pre}{table}.txt", text)
    write_text(results / f"{pre}{table}.md", table2.table2_markdown(shown, title, notes))
    write_text(results / f"{pre}summary.json", strict_json(summary))
    if study.pooled:
        write_text(results / f"{pre}per_flight.csv", study.per_flight().to_csv(index=False))
    figures.levels_figure(per_level, study.column, study.baselines, results / f"{pre}{'ablation' if study.factor == MODEL else 'levels'}.png", what)
    figures.training_curves(load_histories(study.root, study.runs, study.column), results / f"{pre}training_curves.png",
                            study.column, name)  # fmt: skip
    lines = [text, "Findings:", *(f"  {i}. {f}" for i, f in enumerate(summary["findings"], 1))]
    if study.broken:
        lines.append(f"Broken runs ({len(study.broken)}): see broken_runs in {pre}summary.json")
    return "\n".join([*lines, f"Results in {results}"])
