"""Per-sample frame statistics + scalars: the features of the ridge baseline (numpy + h5py)."""

from __future__ import annotations

import numpy as np

from cloudml.errors import CloudMLError


def feature_names(n_frames: int, scalar_names: list[str]) -> list[str]:
    """Names of the columns :func:`frame_features` + scalars produce, in order."""
    per_frame = [f"{stat}_t{t}" for stat in ("mean", "std", "abs_grad_x", "abs_grad_y") for t in range(n_frames)]
    return per_frame + [f"abs_diff_t{t}_t{t + 1}" for t in range(n_frames - 1)] + list(scalar_names)


def frame_features(images: np.ndarray) -> np.ndarray:
    """(n, T, [C,] H, W) → (n, 5T − 1): per-frame mean, std, mean |∂x|, mean |∂y|, and the
    mean |difference| between consecutive frames (texture and parallax proxies)."""
    x = np.asarray(images, np.float32)
    axes = tuple(range(2, x.ndim))
    stats = [x.mean(axis=axes), x.std(axis=axes),
             np.abs(np.diff(x, axis=-1)).mean(axis=axes), np.abs(np.diff(x, axis=-2)).mean(axis=axes),
             np.abs(np.diff(x, axis=1)).mean(axis=axes)]  # fmt: skip
    return np.concatenate(stats, axis=1).astype(np.float64)


def read_features(data_path, keys: dict, rows: np.ndarray, memory_budget_mb: float = 64):
    """Features, targets (km), feature names and flight ids (or None) for sorted unique ``rows`` of the
    data file; the file is checked by the data layer, and images are read in chunks that fit the budget."""
    from cloudml.data.schema import DataKeys, open_h5, read_images, read_metadata

    meta = read_metadata(data_path, DataKeys(**keys))
    if rows.size and (rows[0] < 0 or rows[-1] >= meta.n):
        raise CloudMLError(f"split indices outside 0..{meta.n - 1} of {data_path}")
    row_bytes = 4 * 4 * int(np.prod(meta.frame_shape))  # float32 block + diff temporaries
    step = max(1, int(memory_budget_mb * 2**20 // row_bytes))
    with open_h5(meta.path) as f:
        images = f[meta.keys.images]
        X = np.concatenate([frame_features(read_images(images, rows[i : i + step])) for i in range(0, rows.size, step)])
        if meta.keys.scalars:
            X = np.hstack([X, np.asarray(f[meta.keys.scalars][()], np.float64)[rows]])
    flights = None if meta.flight is None else meta.flight[rows]
    return X, meta.target[rows], feature_names(meta.frame_shape[0], meta.scalar_names), flights
