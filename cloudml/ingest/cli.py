"""`python -m cloudml.ingest OUT.h5 FLIGHT_DIR ...`: the command line; errors are one line, exit 2."""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import fields
from pathlib import Path

from cloudml.errors import CloudMLError
from cloudml.ingest.options import Layout, Options
from cloudml.ingest.reasons import REASONS

PROG = "python -m cloudml.ingest"
DEFAULTS = Options()


class Interrupted(Exception):
    """A catchable signal (SIGTERM, SIGHUP) arrived: unwind so that the temp file is removed."""


_signalled: list = []  # the catchable signals received so far


def _raise(signum, frame):
    _signalled.append(signal.Signals(signum).name)
    raise Interrupted(_signalled[-1])


def _raise_if_signalled() -> None:
    """Python drops an exception raised inside a weakref callback or __del__, so a signal's exception
    can be lost mid-write: before the output is put in place, a recorded signal stops it again."""
    if _signalled:
        raise Interrupted(_signalled[0])


def _quiet_lost_interrupt(unraisable) -> None:
    """Python's report of such a dropped exception, left out for Interrupted (`_raise_if_signalled` acts on it)."""
    if not isinstance(unraisable.exc_value, Interrupted):
        sys.__unraisablehook__(unraisable)


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value
    return parse


def _odd(text: str) -> int:
    value = int(text)
    if value < 1 or value % 2 == 0:
        raise argparse.ArgumentTypeError(f"expected an odd number >= 1 (windows are centred on the matched frame), got {text}")
    return value


def _rows(text: str) -> tuple:
    start, sep, stop = text.partition(":")
    if not sep or not start.isdigit() or not stop.isdigit() or int(start) >= int(stop):
        raise argparse.ArgumentTypeError(f"expected START:STOP with 0 <= START < STOP, got {text}")
    return int(start), int(stop)


def _range(text: str) -> tuple:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI in km, got {text}") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"expected LO < HI, got {text}")
    return lo, hi


def _names(text: str) -> tuple:
    return tuple(n for n in text.split(",") if n)


def parser() -> argparse.ArgumentParser:
    notes = {"lidar_year": "(none: from the date that ends the lidar file name)", "nav_time": "(not in the file: nav row i is frame i's)"}
    layout = "\n".join(
        f"  {Layout.key(f.name):20s} {getattr(DEFAULTS.layout, f.name)} {notes.get(f.name, '')}".rstrip() for f in fields(Layout)
    )
    reasons = "\n".join(f"  {name:13s} {text}" for name, text in REASONS.items())
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make the unified HDF5 file (images, scalars, target, flight, time) from raw ER-2 flights:\n"
        "each FLIGHT_DIR holds one flight's camera, lidar and navigation files; its name is the flight's name.",
        epilog=f"raw-file layout (--set KEY=VALUE; patterns are globs inside each FLIGHT_DIR):\n{layout}\n\n"
        f"why a lidar profile is dropped (counted per flight, in this order):\n{reasons}\n\n"
        "writes OUT.h5 atomically (a temp file beside it until done) and the report OUT.ingest.json;\n"
        "check the result with: python -m cloudml.data OUT.h5",
    )
    p.add_argument("out", metavar="OUT.h5", help="the unified file to write")
    p.add_argument("flights", metavar="FLIGHT_DIR", nargs="+", help="one folder per flight")
    p.add_argument("--frames", type=_odd, default=DEFAULTS.frames, metavar="T",
                   help="frames per sample, centred on the matched frame (default %(default)s)")
    p.add_argument("--downsample", type=_positive(int), default=DEFAULTS.downsample, metavar="F",
                   help="block-mean factor after the crop; 4 turns 440 x 640 into 110 x 160 (default %(default)s)")
    p.add_argument("--crop-rows", type=_rows, default=DEFAULTS.crop_rows, metavar="START:STOP", help="frame rows kept (default 40:480)")
    p.add_argument("--time-tolerance", type=_positive(float), default=DEFAULTS.time_tolerance, metavar="S",
                   help="largest |lidar time - frame time| matched, seconds (default %(default)s)")
    p.add_argument("--cbh-range", type=_range, default=DEFAULTS.cbh_range, metavar="LO,HI",
                   help="cloud base heights kept, km (default 0.1,2.0)")
    p.add_argument("--val-flights", type=_names, default=(), metavar="NAME,...",
                   help="the file's default_val_flights (default: the flight with the median number of samples)")
    p.add_argument("--single-layer", action="store_true", help="keep only profiles with exactly one layer")
    p.add_argument("--gap-factor", type=_positive(float), default=DEFAULTS.gap_factor, metavar="X",
                   help="a frame step above X x the median step is a time gap that no window may span (default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="change the raw-file layout (keys below)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows on a terminal only anyway)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from cloudml.ingest.pipeline import NoSamples, ingest  # after parsing: --help stays instant
    from cloudml.ingest.report import format_table, report_path

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise)
    sys.unraisablehook = _quiet_lost_interrupt
    try:
        options = Options(
            frames=args.frames, downsample=args.downsample, crop_rows=args.crop_rows, time_tolerance=args.time_tolerance,
            cbh_range=args.cbh_range, val_flights=args.val_flights, single_layer=args.single_layer,
            gap_factor=args.gap_factor, progress=not args.no_progress, layout=Layout().with_settings(args.settings),
        )  # fmt: skip
        report = ingest(args.out, args.flights, options, before_commit=_raise_if_signalled)
    except NoSamples as exc:
        print(format_table(exc.report), flush=True)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except CloudMLError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        print(f"{PROG}: interrupted ({exc or 'SIGINT'}): no output written", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 143
    print(format_table(report))
    shape = " x ".join(map(str, report["frame_shape"]))
    print(f"wrote {report['output']}: {report['samples']} samples of {shape} frames; report {report_path(Path(args.out))}")
    return 0
