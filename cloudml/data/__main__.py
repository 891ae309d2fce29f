"""The data check: `python -m cloudml.data PATH` describes a file and says whether it would train.

Prints the schema found, N, samples per flight, target statistics, non-finite counts, the
image value range and the split sizes of the default config; exits 2 with a one-line
error on a file that would not train.
"""

from __future__ import annotations

import argparse
import sys

import h5py
import numpy as np

from cloudml.data.schema import DataKeys, image_statistics, open_h5, read_metadata
from cloudml.data.splits import SPLITS, make_split
from cloudml.errors import CloudMLError


def check(path: str, keys: DataKeys, split_kind: str, val_fraction: float) -> str:
    """The report for `path`; raises CloudMLError where the file would not train."""
    meta = read_metadata(path, keys)
    lines = [f"file: {meta.path}", "schema:"]
    with open_h5(meta.path) as f:
        for name, obj in f.items():
            if isinstance(obj, h5py.Dataset):
                chunks = f" chunks={obj.chunks} {obj.compression or ''}".rstrip() if obj.chunks else ""
                lines.append(f"  {name:12s} {str(obj.shape):22s} {obj.dtype}{chunks}")
        lines += [f"  attr {k} = {v}" for k, v in meta.attrs.items() if k != "generator_config"]
    lines.append(f"N = {meta.n}, frames (T, C, H, W) = {meta.frame_shape}, scalars = {meta.scalar_names}")
    if meta.flight is not None:
        counts = {meta.flight_names[i]: int((meta.flight == i).sum()) for i in meta.flight_names}
        lines.append(f"samples per flight ({len(counts)} flights): " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    else:
        lines.append(f"no '{keys.flight}' key: only the random split is available")
    t = meta.target
    lines.append(f"target (km): mean {t.mean():.4g}, std {t.std():.4g}, min {t.min():.4g}, max {t.max():.4g}, non-finite 0")
    stats = image_statistics(meta.path, keys, np.arange(meta.n))
    if stats["nonfinite"]:
        raise CloudMLError(f"{meta.path}: key '{keys.images}' has {stats['nonfinite']} non-finite pixels, expected finite values")
    lines.append(f"images: range {stats['min']:.4g}..{stats['max']:.4g}, non-finite 0")
    split = make_split(meta, split_kind, val_fraction=val_fraction)
    held = f" (validation flights: {', '.join(split.val_flights)})" if split.val_flights else ""
    lines.append(f"split {split.kind}: {len(split.train)} train / {len(split.val)} validation{held}")
    lines.append("OK: this file would train")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudml.data", description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--split", choices=SPLITS, default="flight")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    for key, default in vars(DataKeys()).items():
        parser.add_argument(f"--{key}-key", default=default, help=f"dataset name of '{key}' (default {default})")
    args = parser.parse_args(argv)
    keys = DataKeys(**{k: getattr(args, f"{k}_key") or None for k in vars(DataKeys())})
    try:
        print(check(args.path, keys, args.split, args.val_fraction))
    except CloudMLError as exc:
        print(f"python -m cloudml.data: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
