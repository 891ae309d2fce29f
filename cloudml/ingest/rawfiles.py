"""Find, open and read the raw flight files, turning every way they can be wrong into one line.

Each message names the file, the dataset and what was expected, so that a user can fix
the file or point ingest elsewhere (`--set KEY=VALUE`) without reading a traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from cloudml.errors import CloudMLError


def find_file(flight_dir: Path, pattern: str, role: str, key: str) -> Path:
    """The one file of `flight_dir` matching `pattern`; none or several is an error."""
    found = sorted(p for p in flight_dir.glob(pattern) if p.is_file())
    if not found:
        raise CloudMLError(f"{flight_dir}: no {role} file matching '{pattern}' (expected one; --set {key}=GLOB to look for another)")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise CloudMLError(f"{flight_dir}: {len(found)} {role} files match '{pattern}' ({names}), expected one")
    return found[0]


def open_h5(path: Path, role: str, **h5_options) -> h5py.File:
    """`path` opened read-only as HDF5 (the .hdf nav file is HDF5 too), or a one-line error."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise CloudMLError(f"{path}: cannot read the {role} file ({exc.strerror})") from None
    if not h5py.is_hdf5(path):
        raise CloudMLError(f"{path}: not an HDF5 file (expected the {role} file in HDF5 format)")
    try:
        return h5py.File(path, "r", **h5_options)
    except OSError as exc:
        raise CloudMLError(f"{path}: cannot be read as HDF5, truncated or corrupt ({_reason(exc)})") from None


@contextmanager
def reading(path: Path, role: str):
    """Damage found while reading `path` (h5py raises OSError, KeyError or RuntimeError, e.g. for
    a corrupt compressed chunk) becomes one line. Wrap reads only, never writes elsewhere."""
    try:
        yield
    except (OSError, KeyError, RuntimeError) as exc:
        raise CloudMLError(f"{path}: the {role} file cannot be read, truncated or corrupt ({_reason(exc)})") from None


@contextmanager
def open_raw(path: Path, role: str):
    """`open_h5` for a block that only reads the file: its read errors become one line too."""
    with open_h5(path, role) as f, reading(path, role):
        yield f


def _reason(exc: Exception) -> str:
    """h5py's message up to its first parenthesis (the rest holds addresses and offsets)."""
    text = str(exc.args[0] if exc.args else exc).strip().splitlines()
    return (text[0].split("(")[0].strip()[:160] if text else "") or type(exc).__name__


def dataset(f: h5py.File, path: str, what: str, shape: tuple, key: str) -> h5py.Dataset:
    """The numeric dataset `path` of rank len(`shape`) (its axes named in `shape`)."""
    expected = "(" + ", ".join(shape) + ("," if len(shape) == 1 else "") + ")"
    obj = f.get(path) if path else None
    if not isinstance(obj, h5py.Dataset):
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        group = f.get(parent) if parent else f
        if isinstance(group, h5py.Group):
            names = ", ".join(sorted(group.keys())) or "nothing"
            holds = f"'{parent}' holds: {names}" if parent else f"the file holds: {names}"
        else:
            holds = f"the file has no group '{parent}'"
        raise CloudMLError(f"{f.filename}: no dataset '{path}' ({what}, expected {expected}); {holds} (--set {key}=PATH to read another)")
    if obj.dtype.kind not in "fiu":
        raise CloudMLError(f"{f.filename}: dataset '{path}' has dtype {obj.dtype}, expected numbers ({what})")
    if obj.ndim != len(shape):
        raise CloudMLError(f"{f.filename}: dataset '{path}' has shape {obj.shape}, expected {expected} ({what})")
    return obj


def same_rows(f: h5py.File, dset: h5py.Dataset, n: int, like: str) -> None:
    """`dset` must have `n` rows, one per row of the dataset `like`."""
    if dset.shape[0] != n:
        name = dset.name.lstrip("/")
        raise CloudMLError(f"{f.filename}: dataset '{name}' has {dset.shape[0]} rows, expected {n} (one per row of '{like}')")


def check_times(path: Path, name: str, times: np.ndarray, what: str) -> None:
    """Times must be finite and strictly increasing: matching and windows rely on the order."""
    if len(times) == 0:
        raise CloudMLError(f"{path}: dataset '{name}' is empty, expected {what}")
    bad = ~np.isfinite(times)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise CloudMLError(f"{path}: dataset '{name}' has {int(bad.sum())} non-finite values (first at row {first}), expected finite {what}")
    back = np.flatnonzero(np.diff(times) <= 0)
    if len(back):
        i = int(back[0]) + 1
        raise CloudMLError(
            f"{path}: dataset '{name}' is not strictly increasing at row {i} ({utc(times[i])} after {utc(times[i - 1])}), "
            f"expected {what} in time order"
        )


def check_overlap(path: Path, name: str, times: np.ndarray, camera: Path, frame_times: np.ndarray, slack: float) -> None:
    """`times` must share some span with the camera's frames (within `slack` seconds)."""
    if times[0] > frame_times[-1] + slack or times[-1] < frame_times[0] - slack:
        raise CloudMLError(
            f"{path}: dataset '{name}' spans {span(times)}, expected times overlapping the camera's {span(frame_times)} ({camera.name})"
        )


def utc(t: float) -> str:
    """Epoch seconds as a UTC time to 0.1 s, for messages."""
    try:
        stamp = datetime.fromtimestamp(float(t), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{float(t):.6g} s"
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 100000}"


def span(times: np.ndarray) -> str:
    return f"{utc(times[0])}..{utc(times[-1])} UTC"
