"""The whole ingest: plan every flight, write the unified file atomically, then the report."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

from cloudml.atomic import atomic_write, write_json
from cloudml.data.schema import SCHEMA_VERSION
from cloudml.errors import CloudMLError
from cloudml.ingest.options import Options
from cloudml.ingest.plan import plan_flight
from cloudml.ingest.report import build_report, report_path
from cloudml.ingest.writer import create_images, stream_images, write_arrays

VAL_RULE = "rule: the flight with the median number of samples, the lower one for an even count, ties in command-line order"


class NoSamples(CloudMLError):
    """No flight gave a sample; carries the report that says why."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def default_val_flights(counts: dict) -> list:
    """The validation flight when --val-flights is not given: a flight of typical size, neither
    the largest (it would starve training) nor the smallest (its metrics would be noise).
    On the program's counts it is 12Feb25, the flight the program held out. None with < 2 flights."""
    if len(counts) < 2:
        return []
    ranked = sorted(counts, key=lambda name: (counts[name], list(counts).index(name)))
    return [ranked[(len(ranked) - 1) // 2]]


def flight_dirs(paths: list) -> list:
    """The flight folders as Paths: each must be a directory, and their names (the flight names) distinct."""
    dirs = [Path(p) for p in paths]
    for d in dirs:
        if not d.is_dir():
            what = "not a directory" if d.exists() else "no such directory"
            raise CloudMLError(f"{d}: {what} (expected a flight folder of camera, lidar and nav files)")
    names = [d.name for d in dirs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CloudMLError(f"flight name {twice[0]} given twice (a flight's name is its folder's name; expected distinct names)")
    return dirs


def check_val_flights(requested: tuple, names: list) -> None:
    unknown = [v for v in requested if v not in names]
    if unknown:
        raise CloudMLError(
            f"--val-flights {','.join(requested)}: {', '.join(unknown)} is not a flight with samples (flights: {', '.join(names)})"
        )
    if set(names) <= set(requested):
        raise CloudMLError(f"--val-flights {','.join(requested)}: holds out every flight, expected at least one left to train on")


def ingest(out: Path, paths: list, options: Options, before_commit=None) -> dict:
    """Make OUT from the flight folders `paths`; return the report (also written as OUT.ingest.json).
    `before_commit()`, if given, runs when the file is complete but not yet in place: what it raises
    leaves no output."""
    out = Path(out)
    plans = [plan_flight(d, options) for d in flight_dirs(paths)]
    for plan in plans[1:]:
        if plan.frame_shape != plans[0].frame_shape:
            (h, w), (h0, w0) = plan.frame_shape, plans[0].frame_shape
            raise CloudMLError(f"{plan.camera.path}: frames reduce to {h} x {w}, expected {h0} x {w0} like flight {plans[0].name}'s")
    written = [np.zeros(len(p.windows), dtype=bool) for p in plans]
    found = [p for p in plans if len(p.windows)]
    if not found:
        count = f"{len(plans)} flight{'s' if len(plans) > 1 else ''}"
        raise NoSamples(f"no flight gave a sample ({count}; the table above says what dropped their profiles)",
                        build_report(out, plans, written, options, None, VAL_RULE))  # fmt: skip
    if options.val_flights:
        check_val_flights(options.val_flights, [p.name for p in found])
    chosen: dict = {}

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            images = create_images(f, options.frames, found[0].frame_shape)
            images.attrs["crop_rows"], images.attrs["downsample"] = list(options.crop_rows), options.downsample
            for plan, ok in zip(found, stream_images(images, found, options)):
                written[plans.index(plan)] = ok
            final = [(p, ok) for p, ok in zip(plans, written) if ok.any()]
            if not final:
                raise NoSamples("no flight kept a sample with finite pixels", build_report(out, plans, written, options, None, VAL_RULE))
            names = [p.name for p, _ in final]
            write_arrays(f, [p for p, _ in final], [ok for _, ok in final], names)
            if options.val_flights:
                check_val_flights(options.val_flights, names)
            val = list(options.val_flights) or default_val_flights({p.name: int(ok.sum()) for p, ok in final})
            chosen["val"], chosen["rule"] = val, ("--val-flights" if options.val_flights else VAL_RULE)
            f.attrs["schema_version"] = SCHEMA_VERSION
            if val:
                f.attrs["default_val_flights"] = val
            f.attrs["source_files"] = [str(path.resolve()) for p, _ in final for path in p.files.values()]
            f.attrs["generator"] = "cloudml.ingest"
            f.attrs["ingest_options"] = json.dumps({k: v for k, v in asdict(options).items() if k != "progress"})
        if before_commit is not None:
            before_commit()

    try:
        atomic_write(out, write)
    except OSError as exc:  # the output side: a full disk, a read-only folder
        reason = exc.strerror or str(exc).split("(")[0].strip()
        raise CloudMLError(f"{out}: cannot write the output ({reason})") from None
    report = build_report(out, plans, written, options, chosen["val"], chosen["rule"])
    write_json(report_path(out), report)
    return report
