"""The per-flight report: what each flight had, what each rule dropped, what was written.

Printed as a table (one column per flight, rows in the order the rules apply) and written
as JSON beside the output (`OUT.ingest.json`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from cloudml.ingest.options import Options
from cloudml.ingest.plan import FlightPlan
from cloudml.ingest.reasons import FILTERS, MATCHING, REASONS


def report_path(out: Path) -> Path:
    """OUT.h5 -> OUT.ingest.json."""
    return out.with_suffix(".ingest.json")


def flight_entry(plan: FlightPlan, written: np.ndarray) -> dict:
    """One flight's counts; |dt| statistics are over the samples written."""
    dt = np.abs(plan.dt[written])
    return {
        "name": plan.name,
        "files": {role: str(path.resolve()) for role, path in plan.files.items()},
        "frames": len(plan.camera),
        "profiles": plan.profiles,
        "kept": plan.kept,
        "dropped": dict(plan.dropped),
        "samples": int(written.sum()),
        "abs_dt_median_s": round(float(np.median(dt)), 6) if len(dt) else None,  # to the µs
        "abs_dt_max_s": round(float(dt.max()), 6) if len(dt) else None,
        "solar": plan.solar_source,
        "solar_detail": plan.solar_detail,
        "skipped": not written.any(),
    }


def build_report(out: Path, plans: list, written: list, options: Options, val_flights: list, val_rule: str) -> dict:
    flights = [flight_entry(p, ok) for p, ok in zip(plans, written)]
    total = {key: sum(f[key] for f in flights) for key in ("frames", "profiles", "kept", "samples")}
    total["dropped"] = {r: sum(f["dropped"][r] for f in flights) for r in REASONS}
    settings = {k: v for k, v in asdict(options).items() if k not in ("progress", "layout")}
    return {
        "output": str(out.resolve()),
        "samples": total["samples"],
        "frame_shape": [options.frames, *plans[0].frame_shape] if plans else None,
        "options": settings,
        "layout": asdict(options.layout),
        "default_val_flights": val_flights,
        "default_val_rule": val_rule,
        "flights": flights,
        "total": total,
        "reasons": REASONS,
    }


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def format_table(report: dict) -> str:
    """The report as a fixed-width table: one column per flight plus the total."""
    flights = report["flights"]
    total = {**report["total"], "abs_dt_median_s": None, "abs_dt_max_s": None, "solar": ""}
    rows = [("frames", "frames"), ("profiles", "profiles")]
    rows += [(f"  - {r}", r) for r in FILTERS]
    rows += [("kept (lidar filters)", "kept")]
    rows += [(f"  - {r}", r) for r in MATCHING]
    rows += [("samples", "samples"), ("|dt| median (s)", "abs_dt_median_s"), ("|dt| max (s)", "abs_dt_max_s"), ("solar angles", "solar")]
    columns = [f["name"] for f in flights] + ["total"]
    value = lambda entry, key: entry["dropped"][key] if key in REASONS else entry[key]
    cells = [[label] + [_cell(value(e, key)) for e in flights + [total]] for label, key in rows]
    widths = [max(len(r[i]) for r in cells + [[""] + columns]) for i in range(len(columns) + 1)]
    line = lambda items: "  ".join([items[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(items[1:], widths[1:])])
    out = [line([""] + columns)] + [line(r) for r in cells]
    skipped = [f["name"] for f in flights if f["skipped"]]
    if skipped:
        out.append(f"skipped (no samples): {', '.join(skipped)}")
    val = report["default_val_flights"]
    if val:
        out.append(f"default_val_flights: {', '.join(val)} (by {report['default_val_rule']})")
    elif val is not None:
        out.append("default_val_flights: none (a single flight: nothing to hold out)")
    return "\n".join(out)
