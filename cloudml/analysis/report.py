"""Analyse one sweep end to end and write Table 2, the summary, the figures and the selected
loss config into ``results_dir``.

Reads only run files (summary.json, history.csv, predictions.npz, data.json, split.npz)
and the HDF5 data for the baselines; writes every output atomically.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cloudml.analysis import figures, findings, selection, table2, tradeoff
from cloudml.analysis.baselines import SplitSpec, baselines_for
from cloudml.analysis.runs import Sweep, load_sweep, read_history, read_predictions, warn
from cloudml.analysis.stats import INTERVAL_METHOD
from cloudml.atomic import write_text
from cloudml.errors import CloudMLError
from cloudml.rundir import Verdicts

PREFIX = "section2_"


def to_jsonable(obj):
    """numpy/pandas scalars → Python, non-finite floats and missing values → None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return None if pd.isna(obj) else str(obj)


def strict_json(obj) -> str:
    """Standard JSON (no NaN literals), so any JSON reader can load the summary."""
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def resolve_sweep_dir(sweep_dir: str | None, cwd: Path) -> Path:
    """``sweep_dir``, or the newest directory under ``multirun/`` when it is None."""
    if sweep_dir is None:
        multirun = cwd / "multirun"
        candidates = [d for d in multirun.iterdir() if d.is_dir()] if multirun.is_dir() else []
        if not candidates:
            raise CloudMLError(f"sweep_dir not given and {multirun} holds no sweep directory "
                                "(expected multirun/<name>/ from `python train.py -m ...`)")

        def newest(d: Path) -> float:  # Hydra rewrites multirun.yaml on each launch
            marker = d / "multirun.yaml"
            return max(d.stat().st_mtime, marker.stat().st_mtime if marker.is_file() else 0.0)

        return max(candidates, key=newest)
    path = Path(sweep_dir)
    path = path if path.is_absolute() else cwd / path
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise CloudMLError(f"sweep_dir {path} {what} (expected a sweep directory of job directories "
                            "holding summary.json)")
    return path


def prepare_results_dir(results_dir: str | Path, cwd: Path) -> Path:
    """Create ``results_dir`` if missing and prove it is writable."""
    path = Path(results_dir)
    path = path if path.is_absolute() else cwd / path
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CloudMLError(f"results_dir {path} is not a writable directory ({exc.strerror or exc})") from None
    return path


def read_all_predictions(sweep: Sweep) -> dict[str, dict]:
    """Run path → its predictions.npz arrays, for the runs that have readable ones."""
    found = {}
    for path in sweep.runs["path"]:
        arrays = read_predictions(sweep.root / path)
        if arrays is not None:
            found[path] = arrays
    return found


def tradeoff_columns(sweep: Sweep, preds: dict[str, dict]) -> pd.DataFrame:
    """The tradeoff fields of every run (NaN without predictions), in the order of ``sweep.runs``."""
    nan = dict.fromkeys(tradeoff.FIELDS, np.nan)
    rows = [tradeoff.run_tradeoff(preds[p]["pred"], preds[p]["target"]) if p in preds else nan for p in sweep.runs["path"]]
    return pd.DataFrame(rows, columns=list(tradeoff.FIELDS), index=sweep.runs.index)


def check_predictions(sweep: Sweep, preds: dict[str, dict], specs: dict) -> None:
    """Warn where a run's predictions disagree with its split or with its own summary."""
    for run in sweep.runs.itertuples():
        arrays = preds.get(run.path)
        if arrays is None:
            continue
        spec = specs.get(run.path)
        if spec is not None and not _same_rows(arrays, spec.val_index):
            warn(f"{run.path}: predictions.npz rows differ from split.npz val_index; "
                 "its R² is not comparable with the baselines")
        if pd.notna(run.val_r2) and abs(run.tradeoff_r2 - run.val_r2) > 0.01:
            warn(f"{run.path}: summary val_r2 {run.val_r2:.4f} but predictions.npz gives "
                 f"{run.tradeoff_r2:.4f} (duplicated or missing validation samples?)")


def completed_predictions(sweep: Sweep, preds: dict[str, dict]) -> dict[float, list[tuple[np.ndarray, np.ndarray]]]:
    """(pred, target) of every completed run per λ, for Figure 2."""
    out: dict[float, list] = {}
    for run in sweep.runs.itertuples():
        if run.status == "completed" and run.path in preds:
            out.setdefault(run.variance_lambda, []).append((preds[run.path]["pred"], preds[run.path]["target"]))
    return out


def _same_rows(arrays: dict, val_index: np.ndarray) -> bool:
    if "index" in arrays:
        return np.array_equal(np.sort(arrays["index"].ravel()), np.sort(val_index))
    return arrays["pred"].size == val_index.size


def load_histories(sweep: Sweep) -> pd.DataFrame:
    """All runs' history.csv stacked, tagged with λ and seed."""
    frames = []
    for run in sweep.runs.itertuples():
        h = read_history(sweep.root / run.path)
        if h is not None and {"val_r2", "val_variance_ratio"} <= set(h.columns):
            frames.append(h[["epoch", "val_r2", "val_variance_ratio"]].assign(
                variance_lambda=run.variance_lambda, seed=run.seed))
    columns = ["epoch", "val_r2", "val_variance_ratio", "variance_lambda", "seed"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def read_specs(sweep: Sweep) -> tuple[dict, dict[str, str]]:
    """Each run's data/split spec (run path → SplitSpec) and why it is missing elsewhere."""
    specs, missing = {}, {}
    for path in sweep.runs["path"]:
        try:
            specs[path] = SplitSpec.of_run(sweep.root / path)
        except CloudMLError as exc:
            missing[path] = str(exc)
    return specs, missing


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
             "those of the split most runs used")
        main["other_splits"] = results[1:]
    main["oracle_r2"] = groups[0][0].oracle_r2
    return main


def best_run(runs: pd.DataFrame, selected: float | None) -> dict | None:
    """The completed run with the highest R² within the selected λ (or overall)."""
    done = runs[runs["status"] == "completed"]
    if selected is not None:
        done = done[done["variance_lambda"] == selected]
    return done.loc[done["val_r2"].idxmax()].to_dict() if len(done) else None


def baseline_lines(b: dict) -> list[str]:
    """Notes under Table 2: the baselines on the same split, and the oracle R²."""
    if not b.get("available"):
        return [f"Baselines: unavailable ({b.get('reason')})."]
    m, r = b["mean_predictor"], b["ridge"]
    oracle = "not recorded" if b.get("oracle_r2") is None else f"{b['oracle_r2']:.3f} (generating process)"
    if b.get("oracle"):
        oracle += f", {b['oracle']['val_r2']:.3f} on this validation split"
    return [f"Baselines on the same split ({b['n_train']} train / {b['n_val']} val samples): "
            f"mean predictor R² = {m['val_r2']:.3f} (variance ratio {100 * m['val_variance_ratio']:.1f} %); "
            f"ridge on frame statistics + scalars (alpha = {r['alpha']:.3g}) R² = {r['val_r2']:.3f} "
            f"(variance ratio {100 * r['val_variance_ratio']:.1f} %). Data oracle R² = {oracle}."]


def distribution_panels(per_lambda: pd.DataFrame, preds: dict) -> list[dict]:
    """Figure 2 panels: pooled predictions per λ, or the λ's status when it has none."""
    panels = []
    for s in per_lambda.to_dict("records"):
        pairs = preds.get(s["variance_lambda"], [])
        panels.append({"variance_lambda": s["variance_lambda"], "status": s["status"],
                       "pred": np.concatenate([p for p, _ in pairs]) if pairs else None,
                       "target": np.concatenate([t for _, t in pairs]) if pairs else None,
                       "r2": s["val_r2"], "variance_ratio": s["val_variance_ratio"],
                       "n_seeds": s["n_seeds"]})
    return panels


def analyze_sweep(sweep_root: Path, results: Path, cfg: dict, selected_path: Path) -> tuple[dict, str]:
    """Analyse ``sweep_root`` and write every result file into ``results``; return the
    summary and the text analyze.py prints."""
    verdicts = Verdicts.from_config(cfg.get("verdicts"))
    sweep = load_sweep(sweep_root, verdicts)
    specs, missing = read_specs(sweep)
    arrays = read_all_predictions(sweep)
    sweep.runs[list(tradeoff.FIELDS)] = tradeoff_columns(sweep, arrays)
    check_predictions(sweep, arrays, specs)
    preds = completed_predictions(sweep, arrays)
    base = split_baselines(specs, missing, results / "baselines_cache.json",
                           cfg["baselines"]["memory_budget_mb"])
    per_lambda = table2.summarise_lambdas(sweep.runs, cfg["lambdas"])
    chosen = selection.select_lambda(per_lambda, cfg["selection"]["r2_tie_tolerance"])
    crit = selection.success_criteria(per_lambda, cfg["criteria"]["min_r2"],
                                      cfg["criteria"]["min_variance_ratio"])
    best = best_run(sweep.runs, chosen["variance_lambda"])
    summary = {
        "sweep_dir": str(sweep_root),
        "lambdas": [float(x) for x in cfg["lambdas"]],
        "rows": sweep.runs.to_dict("records"),
        "by_lambda": per_lambda.to_dict("records"),
        "selected": chosen,
        "criteria": crit,
        "decision_matrix": selection.decision_matrix(per_lambda, cfg["decision_matrix"]["min_r2"],
                                                     cfg["decision_matrix"]["variance_ratio_range"]),
        "decision": selection.decision(crit),
        "findings": findings.findings(per_lambda, chosen["variance_lambda"], best, base,
                                      base.get("oracle_r2"), verdicts.collapse_variance_ratio),
        "baselines": base,
        "tradeoff": {
            "method": tradeoff.METHOD,
            "by_lambda": per_lambda[["variance_lambda", "val_r2", "val_variance_ratio",
                                     "tradeoff_r2_at_unit_variance"]].to_dict("records"),
            "best_run": None if best is None else {k: best[k] for k in
                                                   ("path", "variance_lambda", "seed", *tradeoff.FIELDS)},
            "curve": "R² = 2ρ√v − v for the best run's ρ = corr(pred, y); R² = v for calibrated predictors",
        },
        "theory": tradeoff.THEORY,
        "interval_method": INTERVAL_METHOD,
        "broken_runs": sweep.broken,
    }
    return summary, write_outputs(summary, sweep, per_lambda, preds, best, results, selected_path)


def write_outputs(summary: dict, sweep: Sweep, per_lambda: pd.DataFrame, preds: dict,
                  best: dict | None, results: Path, selected_path: Path) -> str:
    """Write tables, summary, figures and the selected loss config; return the stdout text."""
    multi_seed = bool((per_lambda["n_seeds"] > 1).any())
    seeds_note = "; mean over seeds [95 % interval]" if multi_seed else ""
    split = summary["baselines"].get("split")
    title = (f"Table 2. Effect of the variance weight λ ({sweep.root.name}"
             f"{f', split {split}' if split else ''}{seeds_note})")
    display = table2.table2_display(per_lambda)
    table_args = (display, title, baseline_lines(summary["baselines"]), summary["theory"], multi_seed)
    txt = table2.table2_text(*table_args)
    csv = table2.table2_csv(per_lambda, sweep.runs).to_csv(index=False)
    write_text(results / f"{PREFIX}table2.csv", csv)
    write_text(results / f"{PREFIX}table2.txt", txt)
    write_text(results / f"{PREFIX}table2.md", table2.table2_markdown(*table_args))
    write_text(results / f"{PREFIX}summary.json", strict_json(summary))
    figures.distributions(distribution_panels(per_lambda, preds), results / f"{PREFIX}distributions.png")
    figures.training_curves(load_histories(sweep), results / f"{PREFIX}training_curves.png")
    figures.tradeoff(sweep.runs, best, results / f"{PREFIX}tradeoff.png")
    chosen = summary["selected"]
    if chosen["variance_lambda"] is not None:
        try:
            selected_path.parent.mkdir(parents=True, exist_ok=True)
            write_text(selected_path, selection.selected_loss_yaml(
                chosen["variance_lambda"], sweep.root, chosen["reason"]))
        except OSError as exc:
            raise CloudMLError(f"selected_loss_config {selected_path} cannot be written "
                                f"({exc.strerror or exc})") from None
        wrote_config = f"Wrote {selected_path} (loss=selected)."
    else:
        wrote_config = f"{selected_path} not updated: nothing selected."
    same = summary["criteria"]["same_lambda"]
    met = ", ".join(f"λ={x:g}" for x in same["value"]) or "not met"
    lines = [txt,
             f"Selected: {chosen['reason']}",
             f"Decision: {summary['decision']} ({same['description']}: {met})",
             "Findings:", *(f"  {i}. {f}" for i, f in enumerate(summary["findings"], 1))]
    if sweep.broken:
        lines.append(f"Broken runs ({len(sweep.broken)}): see broken_runs in {PREFIX}summary.json")
    lines += [wrote_config, f"Results in {results}"]
    return "\n".join(lines)
