"""λ selection, the decision matrix, the success criteria and the decision.

Selection (one-standard-error rule): among stable λ, the best mean R² and its standard error
SE (over seeds, or from the flight bootstrap with one seed); every stable λ whose R² is within
one SE of the best is as good as the best within noise, and of those the one whose variance
ratio is closest to 100 % is chosen. Never the argmax of noise.
Success criteria (the program's): some λ with R² > 0.2, variance ratio > 60 %, stable.
Decision: ``go`` only if some λ > 0 meets all three and is not worse than λ = 0 beyond noise
(its paired interval of ΔR² does not lie below 0); when λ = 0 itself meets them, the report
says that the cure was not needed on this data.
"""
from __future__ import annotations

import pandas as pd


def _lam(x: float) -> str:
    return f"λ={x:g}"


def _lams(values) -> str:
    return ", ".join(_lam(x) for x in values)


def stable_candidates(per_lambda: pd.DataFrame) -> pd.DataFrame:
    """λ rows with completed runs, all stable, sorted by R² (best first)."""
    ok = per_lambda[(per_lambda["stable"] == True) & (per_lambda["n_seeds"] > 0)]  # noqa: E712
    return ok.sort_values("val_r2", ascending=False, kind="stable")


def select_lambda(per_lambda: pd.DataFrame) -> dict:
    """``{"variance_lambda": λ or None, "reason": sentence(s), "rule": ...}`` by the one-SE rule."""
    rule = ("one-standard-error rule: among stable λ, those with R² within one standard error of the best; "
            "of them the variance ratio closest to 100 %")  # fmt: skip
    cand = stable_candidates(per_lambda)
    if cand.empty:
        n_done = int((per_lambda["n_seeds"] > 0).sum())
        why = ("no λ has a completed run yet" if n_done == 0
               else f"none of the {n_done} λ value(s) with completed runs is stable")  # fmt: skip
        return {"variance_lambda": None, "reason": f"No λ selected: {why}.", "rule": rule}
    best = cand.iloc[0]
    se = best["val_r2_se"] if pd.notna(best["val_r2_se"]) else 0.0
    near = cand[cand["val_r2"] >= best["val_r2"] - se]
    pick = near.loc[(near["val_variance_ratio"] - 1).abs().idxmin()]
    stats = f"R² {pick['val_r2']:.3f}, variance ratio {100 * pick['val_variance_ratio']:.1f} %"
    se_text = (f"one standard error {se:.3f} ({'over seeds' if best['n_seeds'] > 1 else 'flight bootstrap, one seed'})"
               if pd.notna(best["val_r2_se"]) else "no standard error available (so only the best itself)")  # fmt: skip
    if len(cand) == 1:
        reason = f"{_lam(pick['variance_lambda'])} is the only λ with completed, stable runs ({stats})."
    else:
        within = ", ".join(f"{_lam(r['variance_lambda'])} {r['val_r2']:.3f}" for _, r in near.iterrows())
        reason = (f"Best stable R²: {_lam(best['variance_lambda'])} {best['val_r2']:.3f}, {se_text}; within it: "
                  f"{within}; {_lam(pick['variance_lambda'])} is chosen as the one with variance ratio closest "
                  f"to 100 % ({stats}).")  # fmt: skip
    return {"variance_lambda": float(pick["variance_lambda"]), "reason": reason, "rule": rule,
            "best_variance_lambda": float(best["variance_lambda"]), "standard_error": None if pd.isna(best["val_r2_se"]) else float(se),
            "within_one_se": [float(x) for x in near["variance_lambda"]]}  # fmt: skip


def _check(description: str, value, passed) -> dict:
    return {"description": description, "value": value, "pass": passed}


def _pass(value, test) -> bool | None:
    return None if value is None or pd.isna(value) else bool(test(value))


def _all(checks) -> bool | None:
    passes = [c["pass"] for c in checks]
    return False if False in passes else (None if None in passes else True)


def decision_matrix(per_lambda: pd.DataFrame, min_r2: float, ratio_range) -> list[dict]:
    """Per λ: R² > min_r2, variance ratio within ratio_range, stable (pass/fail/None)."""
    lo, hi = ratio_range
    out = []
    for s in per_lambda.to_dict("records"):
        r2 = None if s["n_seeds"] == 0 else s["val_r2"]
        ratio = None if s["n_seeds"] == 0 else s["val_variance_ratio"]
        checks = {
            "r2": _check(f"R² > {min_r2:g}", r2, _pass(r2, lambda x: x > min_r2)),
            "variance_ratio": _check(f"variance ratio {100 * lo:g}–{100 * hi:g} %", ratio,
                                     _pass(ratio, lambda x: lo <= x <= hi)),
            "stable": _check("stable", s["stable"], s["stable"]),
        }
        out.append({"variance_lambda": s["variance_lambda"], **checks, "all_pass": _all(checks.values())})
    return out


def success_criteria(per_lambda: pd.DataFrame, min_r2: float, min_ratio: float) -> dict:
    """The program's criteria for going on; each with the witnessing λ and its value."""
    done = per_lambda[per_lambda["n_seeds"] > 0]

    def best(col: str) -> tuple[float | None, float | None]:
        if done.empty:
            return None, None
        row = done.loc[done[col].idxmax()]
        return float(row["variance_lambda"]), float(row[col])

    (r2_lam, r2), (v_lam, ratio) = best("val_r2"), best("val_variance_ratio")
    stable = [float(x) for x in done.loc[done["stable"] == True, "variance_lambda"]]  # noqa: E712
    same = [float(s["variance_lambda"]) for s in done.to_dict("records")
            if s["stable"] is True and s["val_r2"] > min_r2 and s["val_variance_ratio"] > min_ratio]
    return {
        "r2": {**_check(f"some λ with R² > {min_r2:g}", r2, r2 is not None and r2 > min_r2),
               "variance_lambda": r2_lam},
        "variance_ratio": {**_check(f"some λ with variance ratio > {100 * min_ratio:g} %", ratio,
                                    ratio is not None and ratio > min_ratio), "variance_lambda": v_lam},
        "stable": _check("some λ with completed, stable runs", stable, bool(stable)),
        "same_lambda": _check("all three met by the same λ", same, bool(same)),
    }


def decision(criteria: dict, comparisons: dict) -> dict:
    """``go`` when some λ > 0 meets every criterion and is not worse than λ = 0 beyond noise."""
    same = criteria["same_lambda"]["value"]
    cured = [lam for lam in same if lam > 0 and lam in comparisons and comparisons[lam]["outcome"] != "worse"
             and comparisons[lam]["delta_r2"] is not None]  # fmt: skip
    worse = [lam for lam in same if lam > 0 and comparisons.get(lam, {}).get("outcome") == "worse"]
    baseline_meets = 0.0 in same
    if cured:
        why = f"{_lams(cured)} meet{'s' if len(cured) == 1 else ''} all three criteria, not worse than λ=0 beyond noise"
    elif worse:
        why = f"{_lams(worse)} meet{'s' if len(worse) == 1 else ''} the criteria but {'is' if len(worse) == 1 else 'are'} worse than λ=0 beyond noise"
    elif [x for x in same if x > 0]:
        why = "the λ > 0 meeting the criteria cannot be compared with λ=0 (no completed λ=0 run)"
    else:
        why = "no λ > 0 meets all three criteria"
    note = ("λ=0 itself meets the criteria: the cure was not needed on this data" if baseline_meets
            else "λ=0 does not meet the criteria")  # fmt: skip
    return {"decision": "go" if cured else "re-evaluate", "reason": why, "lambdas": cured,
            "cure_needed": not baseline_meets, "note": note}


def selected_loss_yaml(variance_lambda: float, sweep_dir, reason: str) -> str:
    """The ``conf/loss/selected.yaml`` that Section 3 runs use via ``loss=selected``."""
    one_line = " ".join(str(reason).split())
    return (f"# Written by analyze.py from {sweep_dir}: {one_line}\n"
            "defaults:\n  - variance_preserving\n  - _self_\n"
            f"variance_lambda: {float(variance_lambda)!r}\n")
