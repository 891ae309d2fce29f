"""The unified HDF5 schema: open a file, check it, and read its small arrays.

Every problem becomes a `CloudMLError` whose one-line message names the file, the key,
what was found and what was expected, before any training starts.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import h5py
import numpy as np

from cloudml.errors import CloudMLError

SCHEMA_VERSION = 1
# Cloud base heights lie within the troposphere; values above this are almost surely metres.
MAX_PLAUSIBLE_KM = 20.0
MIN_PLAUSIBLE_KM = -0.5


@dataclass(frozen=True)
class DataKeys:
    """Names of the datasets inside the file (configurable for users whose files differ)."""

    images: str = "images"
    scalars: Optional[str] = "scalars"
    target: str = "target"
    flight: Optional[str] = "flight"
    time: Optional[str] = "time"


@dataclass
class FileMetadata:
    """What we know about a file without reading its images."""

    path: Path
    keys: DataKeys
    n: int
    frame_shape: tuple  # (T, C, H, W); C = 1 for (N, T, H, W) files
    scalar_names: list
    target: np.ndarray  # (N,) float64, km
    flight: Optional[np.ndarray] = None  # (N,) int
    flight_names: dict = field(default_factory=dict)  # id -> name
    time: Optional[np.ndarray] = None
    attrs: dict = field(default_factory=dict)

    @property
    def image_bytes(self) -> int:
        return self.n * int(np.prod(self.frame_shape)) * 4


def open_h5(path: str | Path) -> h5py.File:
    """Open `path` read-only, turning every way it can fail into a one-line error."""
    path = Path(path)
    if not path.exists():
        raise CloudMLError(f"{path}: file not found (expected an HDF5 file of samples: images, target and optionally scalars, flight, time)")
    if path.is_dir():
        raise CloudMLError(f"{path}: is a directory (expected an HDF5 file)")
    if not h5py.is_hdf5(path):
        raise CloudMLError(f"{path}: not an HDF5 file (no HDF5 signature)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(")[0].strip() or "unreadable"
        raise CloudMLError(f"{path}: cannot be read as HDF5, truncated or corrupt ({reason})") from None


@contextmanager
def readable(path, what: str = ""):
    """Damage found while reading (h5py raises OSError, KeyError or RuntimeError, e.g. a
    corrupt compressed chunk) becomes a one-line error instead of a traceback."""
    try:
        yield
    except (OSError, KeyError, RuntimeError) as exc:
        reason = str(exc.args[0] if exc.args else exc).strip().splitlines()[0][:160] or type(exc).__name__
        raise CloudMLError(f"{path}: {what + ' ' if what else ''}cannot be read, truncated or corrupt ({reason})") from None


def _dataset(f: h5py.File, key: str, what: str) -> h5py.Dataset:
    if key not in f:
        found = ", ".join(sorted(f.keys())) or "nothing"
        raise CloudMLError(f"{f.filename}: missing key '{key}' ({what}); found: {found}")
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        raise CloudMLError(f"{f.filename}: key '{key}' is a group, expected a dataset ({what})")
    if obj.dtype.kind not in "fiub":
        raise CloudMLError(f"{f.filename}: key '{key}' has dtype {obj.dtype}, expected a numeric dtype ({what})")
    return obj


def _read_vector(f: h5py.File, key: str, n: int, what: str) -> np.ndarray:
    dset = _dataset(f, key, what)
    if dset.ndim != 1:
        raise CloudMLError(f"{f.filename}: key '{key}' has shape {dset.shape}, expected ({n},) ({what})")
    if dset.shape[0] != n:
        raise CloudMLError(f"{f.filename}: key '{key}' has {dset.shape[0]} rows, expected {n} like 'images'")
    return dset[()]


def _decode(names) -> list:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(names)]


def _plain(value):
    """An HDF5 attribute as plain Python (str, number or list)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return _decode(value) if value.dtype.kind in "OSU" else value.tolist()
    return value.item() if hasattr(value, "item") else value


def read_metadata(path: str | Path, keys: DataKeys = DataKeys()) -> FileMetadata:
    """Check the schema and the values of the small arrays; images are only shape-checked."""
    with open_h5(path) as f, readable(Path(path)):
        images = _dataset(f, keys.images, "camera frames, (N, T, H, W) or (N, T, C, H, W)")
        if images.ndim not in (4, 5):
            raise CloudMLError(
                f"{f.filename}: key '{keys.images}' has shape {images.shape}, expected (N, T, H, W) or (N, T, C, H, W)"
            )
        n = images.shape[0]
        if n == 0:
            raise CloudMLError(f"{f.filename}: key '{keys.images}' holds no samples (N = 0)")
        frame_shape = frame_row_shape(images)

        target = _read_vector(f, keys.target, n, "cloud base height, km").astype(np.float64)
        bad = ~np.isfinite(target)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise CloudMLError(
                f"{f.filename}: key '{keys.target}' has {int(bad.sum())} non-finite values (first at row {first}), expected finite km"
            )
        lo, hi = float(target.min()), float(target.max())
        if hi > MAX_PLAUSIBLE_KM or lo < MIN_PLAUSIBLE_KM:
            raise CloudMLError(
                f"{f.filename}: key '{keys.target}' ranges {lo:g}..{hi:g}, expected km within "
                f"{MIN_PLAUSIBLE_KM:g}..{MAX_PLAUSIBLE_KM:g} (values in metres? divide by 1000)"
            )
        if np.ptp(target) == 0:
            raise CloudMLError(
                f"{f.filename}: key '{keys.target}' is constant ({lo:g} km): its variance is 0, so R² and the variance term are undefined"
            )

        scalar_names: list = []
        if keys.scalars:
            scalars = _dataset(f, keys.scalars, "ancillary scalars, (N, F)")
            if scalars.ndim != 2 or scalars.shape[0] != n:
                raise CloudMLError(f"{f.filename}: key '{keys.scalars}' has shape {scalars.shape}, expected ({n}, F)")
            values = scalars[()]
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad.any(axis=1))[0])
                raise CloudMLError(
                    f"{f.filename}: key '{keys.scalars}' has {int(bad.sum())} non-finite values (first at row {row}), expected finite numbers"
                )
            names = scalars.attrs.get("names")
            scalar_names = _decode(names) if names is not None else [f"scalar_{i}" for i in range(scalars.shape[1])]

        flight, flight_names = None, {}
        if keys.flight and keys.flight in f:
            flight = _read_vector(f, keys.flight, n, "flight id per sample").astype(np.int64)
            names = f[keys.flight].attrs.get("names")
            ids = np.unique(flight)
            if names is not None:
                names = _decode(names)
                if ids.min() < 0 or ids.max() >= len(names):
                    raise CloudMLError(
                        f"{f.filename}: key '{keys.flight}' holds ids {ids.min()}..{ids.max()}, expected 0..{len(names) - 1} (its 'names' attribute)"
                    )
                flight_names = {int(i): names[i] for i in ids}
            else:
                flight_names = {int(i): f"flight_{i}" for i in ids}
        time = None
        if keys.time and keys.time in f:
            time = _read_vector(f, keys.time, n, "acquisition time, s").astype(np.float64)
        attrs = {k: _plain(v) for k, v in f.attrs.items()}

    return FileMetadata(
        path=Path(path).resolve(),
        keys=keys,
        n=n,
        frame_shape=frame_shape,
        scalar_names=scalar_names,
        target=target,
        flight=flight,
        flight_names=flight_names,
        time=time,
        attrs=attrs,
    )


def read_images(dset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Read `rows` (any order, repeats allowed) as float32 (len, T, C, H, W); h5py needs
    increasing indices, so the distinct rows are read in order and then arranged."""
    rows = np.asarray(rows)
    unique, inverse = np.unique(rows, return_inverse=True)
    if len(unique) and unique[-1] - unique[0] + 1 == len(unique):
        block = dset[int(unique[0]) : int(unique[-1]) + 1]  # one contiguous slice: fastest
    else:
        block = dset[unique]
    block = np.asarray(block, dtype=np.float32)
    if block.ndim == 4:
        block = block[:, :, None]
    return block if np.array_equal(unique, rows) else block[inverse]


def frame_row_shape(dset: h5py.Dataset) -> tuple:
    """(T, C, H, W) of one sample of an image dataset; (N, T, H, W) files have C = 1."""
    return tuple(dset.shape[1:]) if dset.ndim == 5 else (dset.shape[1], 1, *dset.shape[2:])


def frame_statistics(blocks: Iterable[np.ndarray]) -> dict:
    """Per-channel mean/std, range and non-finite count over float32 blocks (n, T, C, H, W)."""
    total, s, ss = 0, 0.0, 0.0
    lo, hi, nonfinite = np.inf, -np.inf, 0
    for block in blocks:
        finite = np.isfinite(block)
        if not finite.all():
            nonfinite += int(block.size - np.count_nonzero(finite))
        if nonfinite:
            continue
        axes = (0, 1, 3, 4)  # all but the channel; sums in float64
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        s = s + block.sum(axes, dtype=np.float64)
        ss = ss + np.square(block).sum(axes, dtype=np.float64)
        total += block.size // block.shape[2]
    if nonfinite:
        return {"nonfinite": nonfinite}
    mean = s / total
    std = np.sqrt(np.maximum(ss / total - mean**2, 0.0))
    return {"mean": mean.tolist(), "std": std.tolist(), "min": float(lo), "max": float(hi), "nonfinite": 0}


def slab_rows(row_bytes: int) -> int:
    """Rows of frames read, copied or summarised at a time: 1024, fewer for big frames (<= 16 MB).
    Statistics sum slab by slab, so every reader of a split must use the same slabs."""
    return max(1, min(1024, 2**24 // max(1, int(row_bytes))))


def slabs(frames: np.ndarray) -> Iterable[np.ndarray]:
    """`frames` (n, T, C, H, W) as consecutive views of `slab_rows` rows."""
    step = slab_rows(frames[:1].nbytes)
    return (frames[i : i + step] for i in range(0, len(frames), step))


def read_statistics(dset: h5py.Dataset, rows: np.ndarray) -> dict:
    """`frame_statistics` of the frames of an open image dataset at `rows`, read in increasing
    row order a slab at a time (so a sorted split sums like its frames held in memory)."""
    rows = np.sort(np.asarray(rows))
    step = slab_rows(int(np.prod(dset.shape[1:])) * 4)
    return frame_statistics(read_images(dset, rows[i : i + step]) for i in range(0, len(rows), step))


def image_statistics(path: Path, keys: DataKeys, rows: np.ndarray) -> dict:
    """`read_statistics` of the frames at `rows` of the file at `path`."""
    with open_h5(path) as f, readable(path, f"key '{keys.images}'"):
        return read_statistics(f[keys.images], rows)
