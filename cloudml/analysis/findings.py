"""The program's "Key Findings" as three sentences generated from the numbers.

Each sentence states what the numbers show, including the unwelcome outcome: a baseline
that did not collapse, no λ beating the baseline, a variance term that cost skill.
"""
from __future__ import annotations

import pandas as pd

from cloudml.analysis.selection import intervals_overlap


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _row(per_lambda: pd.DataFrame, lam: float) -> dict | None:
    hit = per_lambda[(per_lambda["variance_lambda"] == lam) & (per_lambda["n_seeds"] > 0)]
    return hit.iloc[0].to_dict() if len(hit) else None


def collapse_finding(base: dict | None, threshold: float) -> str:
    """(1) Did the baseline λ=0 collapse (variance ratio below ``threshold``)?"""
    if base is None:
        return "The baseline λ=0 has no completed run, so collapse cannot be assessed yet."
    nums = f"variance ratio {_pct(base['val_variance_ratio'])}, R² {base['val_r2']:.3f}"
    if base["val_variance_ratio"] < threshold:
        return f"The baseline λ=0 collapsed: its predictions keep only {nums} (collapse means below {_pct(threshold)})."
    return f"Collapse did not occur at the baseline λ=0: {nums}, above the {_pct(threshold)} collapse threshold."


def best_other(per_lambda: pd.DataFrame, selected: float | None, base: dict | None) -> dict | None:
    """The λ > 0 to set against the baseline: the selected λ if it beats the baseline,
    else the highest R² among λ > 0 (stable ones first)."""
    others = per_lambda[(per_lambda["variance_lambda"] > 0) & (per_lambda["n_seeds"] > 0)]
    if others.empty:
        return None
    if base is not None:
        beaters = others[others["val_r2"] > base["val_r2"]]
        others = beaters if len(beaters) else others
    if selected is not None and selected in set(others["variance_lambda"]):
        return _row(per_lambda, selected)
    ranked = others.assign(_stable=others["stable"] == True)  # noqa: E712
    return ranked.sort_values(["_stable", "val_r2"], ascending=False).iloc[0].drop("_stable").to_dict()


def comparison_finding(base: dict | None, best: dict | None) -> str:
    """(2) The best λ > 0 against the baseline, saying plainly when none beats it."""
    if best is None:
        return "No λ > 0 has a completed run, so nothing can be compared with the baseline yet."
    lam = f"λ={best['variance_lambda']:g}" + ("" if best["stable"] else " (not stable)")
    nums = f"R² {best['val_r2']:.3f} with variance ratio {_pct(best['val_variance_ratio'])}"
    if base is None:
        return f"Without a completed baseline λ=0 run, the best λ > 0 ({lam}: {nums}) cannot be compared with it."
    versus = f"against R² {base['val_r2']:.3f} with variance ratio {_pct(base['val_variance_ratio'])} at λ=0"
    if best["val_r2"] <= base["val_r2"]:
        return f"No λ beats the baseline: the best λ > 0 ({lam}) reaches {nums}, {versus}."
    if intervals_overlap(best["val_r2_ci"], base["val_r2_ci"]):
        return (f"No λ clearly beats the baseline: {lam} reaches {nums}, {versus}, but the 95 % "
                "seed intervals of R² overlap, so the difference is within seed-to-seed variation.")
    single = best["n_seeds"] < 2 or base["n_seeds"] < 2
    caveat = " (from a single seed, so this difference has no uncertainty estimate)" if single else ""
    return f"{lam} beats the baseline: {nums}, {versus}{caveat}."


def cost_finding(best_run: dict | None, baselines: dict, oracle_r2: float | None) -> str:
    """(3) What the variance term cost, and the best run against baselines and oracle."""
    if best_run is None or pd.isna(best_run.get("tradeoff_r2_at_unit_variance")):
        head = "No completed run with readable predictions, so the trade-off cannot be measured"
    else:
        head = (f"For the best run (λ={best_run['variance_lambda']:g}, seed {best_run['seed']}), "
                f"rescaling its predictions to variance ratio 1 changes R² from "
                f"{best_run['tradeoff_r2']:.3f} (variance ratio {_pct(best_run['tradeoff_variance_ratio'])}) "
                f"to {best_run['tradeoff_r2_at_unit_variance']:.3f}")
    mean, ridge = baselines.get("mean_predictor"), baselines.get("ridge")
    if mean and ridge:
        context = (f"on the same split the mean predictor scores R² {mean['val_r2']:.3f} and ridge "
                   f"regression on frame statistics R² {ridge['val_r2']:.3f} (variance ratio "
                   f"{_pct(ridge['val_variance_ratio'])})")
        if best_run is not None and pd.notna(best_run.get("val_r2")):
            side = "above" if best_run["val_r2"] > ridge["val_r2"] else "not above"
            context += f", so the best network (R² {best_run['val_r2']:.3f}) is {side} the ridge baseline"
    else:
        context = f"the baselines are unavailable ({baselines.get('reason', 'unknown reason')})"
    oracle = ("the data's oracle R² is not recorded" if oracle_r2 is None
              else f"the data's oracle R² is {oracle_r2:.3f}")
    return f"{head}; {context}; {oracle}."


def findings(per_lambda: pd.DataFrame, selected: float | None, best_run: dict | None,
             baselines: dict, oracle_r2: float | None, collapse_threshold: float) -> list[str]:
    """The three Key Findings sentences."""
    base = _row(per_lambda, 0.0)
    return [collapse_finding(base, collapse_threshold),
            comparison_finding(base, best_other(per_lambda, selected, base)),
            cost_finding(best_run, baselines, oracle_r2)]
