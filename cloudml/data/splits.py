"""Train/validation splits: held-out flights (default), random, leave-one-flight-out, time-blocked.

A split returns sorted index arrays into the file plus a short description; every
way a split can come out empty or ill-defined is a one-line `CloudMLError`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from cloudml.data.schema import FileMetadata
from cloudml.errors import CloudMLError

SPLITS = ("flight", "random", "cv", "time")


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    kind: str
    val_flights: list  # names of held-out flights ([] for random/time)

    def describe(self) -> dict:
        return {"split": self.kind, "val_flights": self.val_flights, "n_train": len(self.train), "n_val": len(self.val)}


def make_split(
    meta: FileMetadata,
    kind: str = "flight",
    val_flights: Optional[Sequence[str]] = None,
    val_fraction: float = 0.2,
    fold: int = 0,
    seed: int = 0,
) -> Split:
    """Split the samples of `meta`. Without `val_flights`, the flight split holds out the file's
    `default_val_flights` attribute if it has one (the synthetic data), else the last flights by id."""
    source = "data.split.val_flights"
    if not val_flights and "default_val_flights" in meta.attrs:
        val_flights = [str(v) for v in np.atleast_1d(meta.attrs["default_val_flights"])]
        source = "the file's default_val_flights attribute"
    if kind not in SPLITS:
        raise CloudMLError(f"data.split.kind={kind!r}: expected one of {', '.join(SPLITS)}")
    if not 0.0 < val_fraction < 1.0:
        raise CloudMLError(f"data.split.val_fraction={val_fraction}: expected a fraction in (0, 1)")
    if kind != "random" and meta.flight is None:
        warnings.warn(f"{meta.path}: no '{meta.keys.flight}' key, so the {kind!r} split is unavailable; using a random split")
        kind = "random"
    if kind == "time" and meta.time is None:
        raise CloudMLError(f"{meta.path}: data.split.kind=time needs key '{meta.keys.time}', which the file lacks")

    names = meta.flight_names
    if kind == "random":
        order = np.random.default_rng(seed).permutation(meta.n)
        n_val = max(1, round(val_fraction * meta.n))
        split = Split(np.sort(order[n_val:]), np.sort(order[:n_val]), kind, [])
    elif kind == "time":
        is_val = np.zeros(meta.n, dtype=bool)
        for fid in names:  # the last `val_fraction` of each flight's time span
            rows = np.flatnonzero(meta.flight == fid)
            cut = np.quantile(meta.time[rows], 1.0 - val_fraction)
            is_val[rows[meta.time[rows] > cut]] = True
        split = Split(np.flatnonzero(~is_val), np.flatnonzero(is_val), kind, [])
    else:
        if len(names) < 2:
            raise CloudMLError(
                f"{meta.path}: the {kind!r} split needs at least 2 flights, found {len(names)} "
                f"({', '.join(names.values())}); use data.split.kind=random"
            )
        ids = sorted(names)
        if kind == "cv":
            if not 0 <= fold < len(ids):
                raise CloudMLError(f"data.split.fold={fold}: expected 0..{len(ids) - 1} (one fold per flight)")
            held = [ids[fold]]
        elif val_flights:
            by_name = {v: k for k, v in names.items()}
            unknown = [v for v in val_flights if v not in by_name]
            if unknown:
                raise CloudMLError(
                    f"{meta.path}: {source} names {', '.join(map(str, unknown))}, "
                    f"not in the file's flights ({', '.join(by_name)})"
                )
            held = [by_name[v] for v in val_flights]
        else:
            held = ids[-max(1, math.ceil(val_fraction * len(ids))) :]
        is_val = np.isin(meta.flight, held)
        split = Split(np.flatnonzero(~is_val), np.flatnonzero(is_val), kind, [names[i] for i in held])

    if len(split.train) == 0 or len(split.val) == 0:
        which = "training" if len(split.train) == 0 else "validation"
        raise CloudMLError(f"{meta.path}: the {split.kind!r} split leaves the {which} set empty ({split.describe()})")
    return split
