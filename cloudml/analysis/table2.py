"""Table 2: one row per λ (mean and 95 % t-interval over seeds), and its CSV/TXT/MD forms.

λ values of the program without a run read ``[pending]``; λ values whose runs have not
completed show their status (``[running]``, ``[failed]``, ``[diverged]``) instead of numbers.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from cloudml.analysis.stats import INTERVAL_METHOD, t_interval

MEAN_COLUMNS = ("val_r2", "val_variance_ratio", "avg_base_loss", "avg_var_loss",
                "tradeoff_r2_at_unit_variance")
CSV_COLUMNS = ("variance_lambda", "final_r2", "variance_ratio_pct", "avg_base_loss",
               "avg_var_loss", "stability", "status", "seed", "n_seeds", "final_r2_ci_low",
               "final_r2_ci_high", "variance_ratio_pct_ci_low", "variance_ratio_pct_ci_high",
               "r2_at_unit_variance")


def _instability(run) -> str | None:
    """Why one completed/diverged run is unstable, or None if it is stable."""
    if run.status == "diverged" or run.stability == "diverged":
        return f"diverged at epoch {int(run.diverged_epoch)}" if pd.notna(run.diverged_epoch) else "diverged"
    if run.stability == "unstable":
        return run.stability_reason if isinstance(run.stability_reason, str) and run.stability_reason else "unstable"
    return None


def _status_text(group: pd.DataFrame) -> str:
    """'pending', one status, or counts such as '2 completed, 1 failed'."""
    if group.empty:
        return "pending"
    counts = group["status"].value_counts()
    return counts.index[0] if len(counts) == 1 else ", ".join(f"{n} {s}" for s, n in counts.items())


def _stability(group: pd.DataFrame) -> tuple[bool | None, str]:
    """(stable?, Table 2 text) of a λ over its completed and diverged runs."""
    outcome = group[group["status"].isin(["completed", "diverged"])]
    if outcome.empty:
        return None, f"[{_status_text(group)}]"
    problems = [(run.seed, msg) for run in outcome.itertuples() if (msg := _instability(run))]
    if not problems:
        return True, "Stable"
    if len(outcome) == 1:
        return False, f"Unstable ({problems[0][1]})"
    # Table 2 names how many seeds and the first reason; each run's own reason is in its CSV row.
    more = f"; {len(problems) - 1} more in the per-seed rows" if len(problems) > 1 else ""
    return False, f"Unstable ({len(problems)} of {len(outcome)} seeds; seed {problems[0][0]}: {problems[0][1]}{more})"


def summarise_lambda(lam: float, group: pd.DataFrame, in_program: bool) -> dict:
    """Numbers for one λ: means over completed runs, t-intervals, status and stability."""
    done = group[group["status"] == "completed"]
    stable, stability = _stability(group)
    row = {
        "variance_lambda": lam,
        "in_program": in_program,
        "n_runs": len(group),
        "n_seeds": len(done),
        "seeds": sorted(int(s) for s in group["seed"].dropna()),
        "status": _status_text(group),
        "stable": stable,
        "stability": stability,
        **{c: float(done[c].mean()) if len(done) else np.nan for c in MEAN_COLUMNS},
    }
    row["val_r2_ci"] = t_interval(done["val_r2"])
    row["val_variance_ratio_ci"] = t_interval(done["val_variance_ratio"])
    return row


def summarise_lambdas(runs: pd.DataFrame, lambdas) -> pd.DataFrame:
    """One row per λ of the program and per extra λ found in ``runs``, sorted by λ."""
    program = {float(x) for x in lambdas}
    groups = dict(tuple(runs.groupby("variance_lambda"))) if len(runs) else {}
    empty = runs.iloc[0:0]
    return pd.DataFrame([summarise_lambda(lam, groups.get(lam, empty), lam in program)
                         for lam in sorted(program | set(groups))])


def _csv_row(s: dict, seed) -> dict:
    """A Table 2 CSV row: numbers, or ``[status]`` in every value column."""
    if s["n_seeds"] == 0:
        marker = f"[{s['status']}]"
        values = dict.fromkeys(("final_r2", "variance_ratio_pct", "avg_base_loss", "avg_var_loss"), marker)
    else:
        values = {"final_r2": s["val_r2"], "variance_ratio_pct": 100 * s["val_variance_ratio"],
                  "avg_base_loss": s["avg_base_loss"], "avg_var_loss": s["avg_var_loss"]}
    (r2_lo, r2_hi), (v_lo, v_hi) = s["val_r2_ci"], s["val_variance_ratio_ci"]
    return {"variance_lambda": s["variance_lambda"], **values, "stability": s["stability"],
            "status": s["status"], "seed": seed, "n_seeds": s["n_seeds"],
            "final_r2_ci_low": r2_lo, "final_r2_ci_high": r2_hi,
            "variance_ratio_pct_ci_low": None if v_lo is None else 100 * v_lo,
            "variance_ratio_pct_ci_high": None if v_hi is None else 100 * v_hi,
            "r2_at_unit_variance": s["tradeoff_r2_at_unit_variance"]}


def table2_csv(per_lambda: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2 for machines: a row per λ; where a λ has several runs, its mean row
    (``seed`` = ``mean``) is followed by one row per run."""
    rows = []
    for s in per_lambda.to_dict("records"):
        group = runs[runs["variance_lambda"] == s["variance_lambda"]]
        if len(group) < 2:
            rows.append(_csv_row(s, s["seeds"][0] if s["seeds"] else None))
            continue
        rows.append(_csv_row(s, "mean"))
        for i in range(len(group)):
            one = summarise_lambda(s["variance_lambda"], group.iloc[[i]], s["in_program"])
            rows.append(_csv_row(one, group["seed"].iloc[i]))
    return pd.DataFrame(rows, columns=CSV_COLUMNS, dtype=object)  # object: ints stay ints


def _with_interval(value: float, ci, fmt: str, scale: float = 1.0) -> str:
    text = format(scale * value, fmt)
    return text if ci[0] is None else f"{text} [{scale * ci[0]:{fmt}}, {scale * ci[1]:{fmt}}]"


def table2_display(per_lambda: pd.DataFrame) -> pd.DataFrame:
    """Table 2 for readers: formatted strings, one row per λ (means over seeds)."""
    rows = []
    for s in per_lambda.to_dict("records"):
        if s["n_seeds"] == 0:
            marker = f"[{s['status']}]"
            r2_txt = ratio_txt = base_txt = var_txt = marker
        else:
            r2_txt = _with_interval(s["val_r2"], s["val_r2_ci"], ".3f")
            ratio_txt = _with_interval(s["val_variance_ratio"], s["val_variance_ratio_ci"], ".1f", 100)
            base_txt = "n/a" if pd.isna(s["avg_base_loss"]) else f"{s['avg_base_loss']:.4f}"
            var_txt = "n/a" if pd.isna(s["avg_var_loss"]) else f"{s['avg_var_loss']:.4f}"
        rows.append({"λ": f"{s['variance_lambda']:g}", "Final R²": r2_txt,
                     "Var. ratio (%)": ratio_txt, "Avg base loss": base_txt,
                     "Avg var loss": var_txt, "Stability": s["stability"], "Seeds": s["n_seeds"]})
    return pd.DataFrame(rows)


def _notes(baseline_lines: list[str], theory: str, multi_seed: bool) -> list[str]:
    notes = [*baseline_lines, f"Theory: {theory}"]
    if multi_seed:
        notes.append(f"Intervals: {INTERVAL_METHOD}.")
    return notes


def table2_text(display: pd.DataFrame, title: str, baseline_lines: list[str], theory: str,
                multi_seed: bool) -> str:
    """Fixed-width plain-text Table 2: title, header, rows, a rule, baselines, theory."""
    text_width = int(display["Stability"].str.len().max())
    header = "Stability".ljust(text_width)  # text reads best left-aligned, under a left-aligned header
    body = display.rename(columns={"Stability": header}).to_string(
        index=False, formatters={header: lambda text: text.ljust(text_width)}).splitlines()
    width = max(len(line) for line in body)
    notes = [textwrap.fill(n, width=max(width, 90), subsequent_indent="  ")
             for n in _notes(baseline_lines, theory, multi_seed)]
    return "\n".join([title, "=" * width, body[0], "-" * width, *body[1:], "-" * width, *notes]) + "\n"


def table2_markdown(display: pd.DataFrame, title: str, baseline_lines: list[str], theory: str,
                    multi_seed: bool) -> str:
    """Table 2 as a Markdown table with the same notes underneath."""
    def line(cells) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    rows = [line(display.columns), line(["---"] * len(display.columns)),
            *(line(r) for r in display.itertuples(index=False))]
    notes = [f"- {n}" for n in _notes(baseline_lines, theory, multi_seed)]
    return "\n".join([f"**{title}**", "", *rows, "", *notes]) + "\n"
