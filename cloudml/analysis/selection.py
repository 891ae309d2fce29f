"""λ selection, the decision matrix and the success criteria, as the program states them.

Selection: among λ values whose runs completed and are stable, the highest mean validation
R²; near-ties (within ``tie_tolerance``) go to the variance ratio closest to 100 %.
Success (``go``): some single λ has R² > 0.2, variance ratio > 60 % and is stable.
"""
from __future__ import annotations

import pandas as pd


def _lam(x: float) -> str:
    return f"λ={x:g}"


def _ci_text(ci) -> str:
    return "single seed" if ci[0] is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def intervals_overlap(a, b) -> bool | None:
    """Whether two (low, high) intervals overlap; None when either is missing."""
    if a[0] is None or b[0] is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def stable_candidates(per_lambda: pd.DataFrame) -> pd.DataFrame:
    """λ rows with completed runs, all stable, sorted by R² (best first)."""
    ok = per_lambda[(per_lambda["stable"] == True) & (per_lambda["n_seeds"] > 0)]  # noqa: E712
    return ok.sort_values("val_r2", ascending=False, kind="stable")


def select_lambda(per_lambda: pd.DataFrame, tie_tolerance: float) -> dict:
    """``{"variance_lambda": λ or None, "reason": sentence(s)}`` following the program."""
    cand = stable_candidates(per_lambda)
    if cand.empty:
        n_done = int((per_lambda["n_seeds"] > 0).sum())
        why = ("no λ has a completed run yet" if n_done == 0
               else f"none of the {n_done} λ value(s) with completed runs is stable")
        return {"variance_lambda": None, "reason": f"No λ selected: {why}."}
    best_r2 = cand["val_r2"].iloc[0]
    near = cand[cand["val_r2"] >= best_r2 - tie_tolerance]
    pick = near.loc[(near["val_variance_ratio"] - 1).abs().idxmin()]
    stats = f"R² {pick['val_r2']:.3f}, variance ratio {100 * pick['val_variance_ratio']:.1f} %"
    if len(cand) == 1:
        reason = f"{_lam(pick['variance_lambda'])} is the only λ with completed, stable runs ({stats})."
    elif len(near) == 1:
        runner = cand.iloc[1]
        reason = (f"{_lam(pick['variance_lambda'])} has the highest validation R² among the "
                  f"{len(cand)} stable λ values ({stats}; next {_lam(runner['variance_lambda'])} "
                  f"with R² {runner['val_r2']:.3f}).")
    else:
        tied = ", ".join(f"{_lam(r['variance_lambda'])} {r['val_r2']:.3f}" for _, r in near.iterrows())
        reason = (f"{len(near)} stable λ values have validation R² within {tie_tolerance:g} of the best "
                  f"({tied}); {_lam(pick['variance_lambda'])} is chosen because its variance ratio "
                  f"is closest to 100 % ({stats}).")
    if len(cand) >= 2 and (cand["n_seeds"].iloc[:2] > 1).any():
        a, b = cand.iloc[0], cand.iloc[1]
        overlap = intervals_overlap(a["val_r2_ci"], b["val_r2_ci"])
        verdict = {True: "overlap, so seeds do not resolve their order",
                   False: "do not overlap",
                   None: "cannot be compared (one has a single seed)"}[overlap]
        reason += (f" The 95 % intervals of R² for the best two λ ({_lam(a['variance_lambda'])}: "
                   f"{_ci_text(a['val_r2_ci'])}, {_lam(b['variance_lambda'])}: "
                   f"{_ci_text(b['val_r2_ci'])}) {verdict}.")
    return {"variance_lambda": float(pick["variance_lambda"]), "reason": reason}


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


def decision(criteria: dict) -> str:
    """``go`` when one λ meets every success criterion, else ``re-evaluate``."""
    return "go" if criteria["same_lambda"]["pass"] else "re-evaluate"


def selected_loss_yaml(variance_lambda: float, sweep_dir, reason: str) -> str:
    """The ``conf/loss/selected.yaml`` that Section 3 runs use via ``loss=selected``."""
    one_line = " ".join(str(reason).split())
    return (f"# Written by analyze.py from {sweep_dir}: {one_line}\n"
            "defaults:\n  - variance_preserving\n  - _self_\n"
            f"variance_lambda: {float(variance_lambda)!r}\n")
