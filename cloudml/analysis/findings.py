"""The program's "Key Findings" as three sentences generated from the numbers.

Each sentence states what the numbers show, including the unwelcome outcome: a baseline that
did not collapse, a collapse the variance term cannot cure, no λ beating the baseline beyond
noise, a network below a ridge regression. Every number is a mean over seeds, never the best seed.
"""
from __future__ import annotations

import pandas as pd

VERDICT_MEANING = {
    "calibrated": "its spread is what its signal supports, so widening these predictions can only cost skill",
    "under-dispersed": "its predictions spread less than their own signal supports, a training pathology that a variance term can help",
    "over-dispersed": "its predictions spread more than their signal supports",
    "undetermined": "no interval could be computed",
}  # fmt: skip


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _ci(ci, fmt: str = ".3f") -> str:
    return "" if ci is None or ci[0] is None else f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]"


def _row(per_lambda: pd.DataFrame, lam: float) -> dict | None:
    hit = per_lambda[(per_lambda["variance_lambda"] == lam) & (per_lambda["n_seeds"] > 0)]
    return hit.iloc[0].to_dict() if len(hit) else None


def _seeds(row: dict) -> str:
    return f"mean of {row['n_seeds']} seeds" if row["n_seeds"] > 1 else "one seed"


def diagnosis_text(d: dict | None) -> str:
    """The verdict of a diagnosis with the numbers behind it."""
    if not d:
        return "Diagnosis: unavailable (no readable predictions)."
    parts = (f"R² = ρ² {d['signal']:.3f} − dispersion error {d['dispersion_error']:.3f} − bias² {d['bias_squared']:.3f}; "
             f"within-flight R² {d['r2_within_flight']:.3f}")  # fmt: skip
    cost = f"; at variance ratio 1 it could reach at best R² = 2ρ − 1 − β² = {d['r2_at_unit_variance']:.3f}"
    return (f"Diagnosis: {d['verdict']} (calibration slope b = {d['calibration_slope']:.2f}"
            f"{_ci(d['calibration_slope_ci'], '.2f')}, {d['interval_method'].split(':')[0]}): "
            f"{VERDICT_MEANING[d['verdict']]} ({parts}{cost if d['verdict'] == 'calibrated' else ''}).")


def collapse_finding(base: dict | None, threshold: float) -> str:
    """(1) Did the baseline λ=0 collapse (variance ratio below `threshold`), and why."""
    if base is None:
        return "The baseline λ=0 has no completed run, so collapse cannot be assessed yet."
    nums = f"variance ratio {_pct(base['val_variance_ratio'])}, R² {base['val_r2']:.3f}, {_seeds(base)}"
    if base["val_variance_ratio"] < threshold:
        head = f"The baseline λ=0 collapsed ({nums}; collapse means a variance ratio below {_pct(threshold)})."
    else:
        head = f"Collapse did not occur at the baseline λ=0 ({nums}; above the {_pct(threshold)} collapse threshold)."
    return f"{head} {diagnosis_text(base.get('diagnosis'))}"


def comparison_finding(per_lambda: pd.DataFrame, comparisons: dict, base: dict | None) -> str:
    """(2) λ > 0 against the baseline by the paired ΔR², saying plainly when none beats it."""
    others = per_lambda[(per_lambda["variance_lambda"] > 0) & (per_lambda["n_seeds"] > 0)]
    if others.empty:
        return "No λ > 0 has a completed run, so nothing can be compared with the baseline yet."
    if base is None:
        return "Without a completed baseline λ=0 run, no λ > 0 can be compared with it."
    beats = [c for c in comparisons.values() if c["outcome"] == "beats"]
    if beats:
        best = max(beats, key=lambda c: c["delta_r2"])
        return (f"λ={best['variance_lambda']:g} beats the baseline: ΔR² = {best['delta_r2']:+.3f}{_ci(best['ci'])} "
                f"({best['method']}); {len(beats)} λ > 0 beat it beyond noise.")  # fmt: skip
    ranked = others.assign(_stable=others["stable"] == True).sort_values(["_stable", "val_r2"], ascending=False)  # noqa: E712
    top = ranked.iloc[0]
    c = comparisons.get(top["variance_lambda"])
    lam = f"λ={top['variance_lambda']:g}" + ("" if top["stable"] else " (not stable)")
    if c is None or c["delta_r2"] is None:
        return f"No λ beats the baseline: the best λ > 0 ({lam}, R² {top['val_r2']:.3f}) has no paired comparison with λ=0."
    how = "within noise" if c["outcome"] == "within noise" else ("worse beyond noise" if c["outcome"] == "worse" else "without an interval")
    return (f"No λ beats the baseline: the best λ > 0 ({lam}: R² {top['val_r2']:.3f}, variance ratio "
            f"{_pct(top['val_variance_ratio'])}) differs from λ=0 (R² {base['val_r2']:.3f}) by ΔR² = "
            f"{c['delta_r2']:+.3f}{_ci(c['ci'])}, {how} ({c['method']}).")  # fmt: skip


def _against(r2: float, ridge: dict) -> str:
    """Where the network's R² lies against ridge's interval (an unpaired reading, said so)."""
    lo, hi = ridge.get("val_r2_ci") or (None, None)
    if lo is None:
        return f"is {'above' if r2 > ridge['val_r2'] else 'not above'} ridge's (no interval)"
    if lo <= r2 <= hi:
        return "lies within ridge's interval: neither is shown better (unpaired)"
    return f"lies {'above' if r2 > hi else 'below'} ridge's whole interval"


def cost_finding(row: dict | None, baselines: dict) -> str:
    """(3) What variance matching costs the selected λ, against the baselines and the Bayes reference."""
    if row is None or pd.isna(row.get("tradeoff_r2_at_unit_variance")):
        head = "No selected λ with readable predictions, so the trade-off cannot be measured"
    else:
        head = (f"For the selected λ={row['variance_lambda']:g} ({_seeds(row)}), rescaling the predictions to "
                f"variance ratio 1 changes R² from {row['val_r2']:.3f} (variance ratio "
                f"{_pct(row['val_variance_ratio'])}) to {row['tradeoff_r2_at_unit_variance']:.3f}")  # fmt: skip
    mean, ridge = baselines.get("mean_predictor"), baselines.get("ridge")
    if mean and ridge:
        context = (f"on the same split the mean predictor scores R² {mean['val_r2']:.3f} and ridge regression on "
                   f"frame statistics R² {ridge['val_r2']:.3f}{_ci(ridge.get('val_r2_ci'))}")  # fmt: skip
        if row is not None and pd.notna(row.get("val_r2")):
            context += f"; the network's R² (seed mean {row['val_r2']:.3f}) {_against(row['val_r2'], ridge)}"
    else:
        context = f"the baselines are unavailable ({baselines.get('reason', 'unknown reason')})"
    return f"{head}; {context}; {bayes_text(baselines)}."


def bayes_text(baselines: dict) -> str:
    """The Bayes reference E[h | cloud top] on the split in use (synthetic data only)."""
    bayes = baselines.get("oracle")
    if not bayes:
        return "no Bayes reference is recorded for this data"
    return (f"the Bayes reference E[h | cloud top] scores R² {bayes['val_r2']:.3f}{_ci(bayes.get('val_r2_ci'))} on this "
            "validation split (a reference for flight-held-out splits, not a bound: on time or random splits "
            "flight-level cues can beat it)")  # fmt: skip


def findings(per_lambda: pd.DataFrame, selected: float | None, comparisons: dict, baselines: dict,
             collapse_threshold: float) -> list[str]:  # fmt: skip
    """The three Key Findings sentences."""
    base = _row(per_lambda, 0.0)
    chosen = _row(per_lambda, selected) if selected is not None else None
    return [collapse_finding(base, collapse_threshold), comparison_finding(per_lambda, comparisons, base),
            cost_finding(chosen, baselines)]  # fmt: skip
