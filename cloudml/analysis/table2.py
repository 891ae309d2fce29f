"""Table 2 (one row per λ) as CSV, fixed-width text and Markdown, with its notes.

λ values of the program without a run read ``[pending]``; λ values whose runs have not
completed show their status (``[running]``, ``[failed]``, ``[diverged]``) instead of numbers.
"""
from __future__ import annotations

import textwrap

import pandas as pd

from cloudml.analysis.diagnosis import VERDICT_RULE
from cloudml.analysis.levels import R2_INTERVAL_RULE

VALUE_COLUMNS = ("final_r2", "variance_ratio_pct", "avg_base_loss", "avg_var_loss", "calibration_slope", "verdict",
                 "r2_within_flight")  # fmt: skip
CSV_COLUMNS = ("variance_lambda", *VALUE_COLUMNS, "stability", "val_drift", "status", "seed", "n_seeds",
               "final_r2_ci_low", "final_r2_ci_high", "final_r2_ci_method", "flights_covered", "variance_ratio_pct_ci_low",
               "variance_ratio_pct_ci_high", "calibration_slope_ci_low", "calibration_slope_ci_high",
               "r2_at_unit_variance")  # fmt: skip


def _scaled(ci, scale: float = 1.0) -> tuple:
    lo, hi = ci if ci is not None else (None, None)
    return (None, None) if lo is None else (scale * lo, scale * hi)


def _csv_row(level: dict, seed, diagnosis: dict | None) -> dict:
    """A Table 2 CSV row: numbers, or ``[status]`` in every value column."""
    d = diagnosis or {}
    if level["n_seeds"] == 0:
        values = dict.fromkeys(VALUE_COLUMNS, f"[{level['status']}]")
    else:
        values = {"final_r2": level["val_r2"], "variance_ratio_pct": 100 * level["val_variance_ratio"],
                  "avg_base_loss": level["avg_base_loss"], "avg_var_loss": level["avg_var_loss"],
                  "calibration_slope": d.get("calibration_slope"), "verdict": d.get("verdict"),
                  "r2_within_flight": d.get("r2_within_flight")}  # fmt: skip
    (r2_lo, r2_hi), (v_lo, v_hi) = _scaled(level.get("val_r2_ci")), _scaled(level.get("val_variance_ratio_ci"), 100)
    b_lo, b_hi = _scaled(d.get("calibration_slope_ci"))
    return {"variance_lambda": level["variance_lambda"], **values, "stability": level["stability"],
            "val_drift": level.get("val_drift"), "status": level["status"], "seed": seed, "n_seeds": level["n_seeds"],
            "final_r2_ci_low": r2_lo, "final_r2_ci_high": r2_hi, "final_r2_ci_method": level.get("val_r2_ci_method"), "flights_covered": level.get("flights_covered"),
            "variance_ratio_pct_ci_low": v_lo, "variance_ratio_pct_ci_high": v_hi,
            "calibration_slope_ci_low": b_lo, "calibration_slope_ci_high": b_hi,
            "r2_at_unit_variance": level["tradeoff_r2_at_unit_variance"]}  # fmt: skip


def _run_level(run: dict) -> dict:
    """One run as a level of its own, for the per-seed rows (no interval: that is the level's)."""
    done = run["status"] == "completed"
    stability = "Stable" if run["stability"] == "stable" else f"Unstable ({run['stability_reason']})"
    return {"variance_lambda": run["variance_lambda"], "n_seeds": int(done), "status": run["status"],
            "val_r2": run["val_r2"], "val_variance_ratio": run["val_variance_ratio"], "avg_base_loss": run["avg_base_loss"],
            "avg_var_loss": run["avg_var_loss"], "stability": stability if run["stability"] else f"[{run['status']}]",
            "val_drift": run["val_drift"], "tradeoff_r2_at_unit_variance": run["tradeoff_r2_at_unit_variance"]}  # fmt: skip


def table2_csv(per_lambda: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2 for machines: a row per λ; where a λ has several runs, its mean row
    (``seed`` = ``mean``) is followed by one row per run."""
    rows = []
    for s in per_lambda.to_dict("records"):
        group = runs[runs["variance_lambda"] == s["variance_lambda"]].to_dict("records")
        if len(group) < 2:
            rows.append(_csv_row(s, s["seeds"][0] if s["seeds"] else None, s["diagnosis"]))
            continue
        rows.append(_csv_row(s, "mean", s["diagnosis"]))
        rows += [_csv_row(_run_level(run), run["seed"], run.get("diagnosis")) for run in group]
    return pd.DataFrame(rows, columns=CSV_COLUMNS, dtype=object)  # object: ints stay ints


def _with_interval(value: float, ci, fmt: str, scale: float = 1.0) -> str:
    text = format(scale * value, fmt)
    return text if ci is None or ci[0] is None else f"{text} [{scale * ci[0]:{fmt}}, {scale * ci[1]:{fmt}}]"


def table2_display(per_lambda: pd.DataFrame) -> pd.DataFrame:
    """Table 2 for readers: formatted strings, one row per λ (means over seeds)."""
    rows = []
    for s in per_lambda.to_dict("records"):
        d = s["diagnosis"]
        if s["n_seeds"] == 0:
            r2 = ratio = slope = verdict = within = base = var = f"[{s['status']}]"
        else:
            r2 = _with_interval(s["val_r2"], s["val_r2_ci"], ".3f") + (f" ({s['flights_covered']})" if s.get("flights_covered") else "")
            ratio = _with_interval(s["val_variance_ratio"], s["val_variance_ratio_ci"], ".1f", 100)
            slope = "n/a" if d is None else _with_interval(d["calibration_slope"], d["calibration_slope_ci"], ".2f")
            verdict = "n/a" if d is None else d["verdict"]
            within = "n/a" if d is None else f"{d['r2_within_flight']:.3f}"
            base = "n/a" if pd.isna(s["avg_base_loss"]) else f"{s['avg_base_loss']:.4f}"
            var = "n/a" if pd.isna(s["avg_var_loss"]) else f"{s['avg_var_loss']:.4f}"
        drift = "" if s["val_drift"] is None else ("yes" if s["val_drift"] else "no")
        rows.append({"λ": f"{s['variance_lambda']:g}", "Final R²": r2, "Var. ratio (%)": ratio, "Slope b": slope,
                     "Verdict": verdict, "Within-flight R²": within, "Train base loss (norm.)": base,
                     "Train var loss (norm.)": var, "Stability": s["stability"], "Val. drift": drift,
                     "Seeds": s["n_seeds"]})  # fmt: skip
    return pd.DataFrame(rows)


def _judged_epochs(verdicts: dict) -> str:
    first = verdicts["spike_from_epoch"]
    return f"from epoch {first} on (earlier ones leave the initialisation)" if first else "in any epoch"


def notes(theory: str, verdicts: dict) -> list[str]:
    """The definitions a reader of Table 2 needs under it."""
    return [f"Theory: {theory}", f"Final R² interval: {R2_INTERVAL_RULE}.", f"Slope b and verdict: {VERDICT_RULE}.",
            "Train base / var loss (norm.): the training loss parts averaged over the last 5 epochs, in normalised units "
            f"(targets z-scored with the training split). Stability: unstable when, {_judged_epochs(verdicts)}, a "
            f"training step's base loss or gradient norm exceeded {verdicts['loss_spike_factor']:g} x / {verdicts['grad_spike_factor']:g} x its "
            f"running median over the previous {verdicts['spike_window_steps']} steps. Val. drift: validation R² fell "
            f"more than {verdicts['drift_r2_drop']:g} below its best earlier value in the last {verdicts['drift_window']} "
            "epochs (reported, never used to exclude a λ)."]  # fmt: skip


def table2_text(display: pd.DataFrame, title: str, notes: list[str]) -> str:
    """Fixed-width plain-text Table 2: title, header, rows, a rule, notes."""
    text_width = int(display["Stability"].str.len().max())
    header = "Stability".ljust(text_width)  # text reads best left-aligned, under a left-aligned header
    body = display.rename(columns={"Stability": header}).to_string(
        index=False, formatters={header: lambda text: text.ljust(text_width)}).splitlines()
    width = max(len(line) for line in body)
    wrapped = [textwrap.fill(n, width=max(width, 90), subsequent_indent="  ") for n in notes]
    return "\n".join([title, "=" * width, body[0], "-" * width, *body[1:], "-" * width, *wrapped]) + "\n"


def table2_markdown(display: pd.DataFrame, title: str, notes: list[str]) -> str:
    """Table 2 as a Markdown table with the same notes underneath."""
    def line(cells) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    rows = [line(display.columns), line(["---"] * len(display.columns)),
            *(line(r) for r in display.itertuples(index=False))]  # fmt: skip
    return "\n".join([f"**{title}**", "", *rows, "", *(f"- {n}" for n in notes)]) + "\n"
