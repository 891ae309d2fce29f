"""Frame reduction: area-average (block mean) downsampling of cropped camera frames."""

from __future__ import annotations

import numpy as np


def reduced_shape(rows: int, cols: int, factor: int) -> tuple:
    """(H, W) of a `rows` x `cols` frame after `factor` x `factor` blocks; a partial block is dropped."""
    return rows // factor, cols // factor


def block_mean(frames: np.ndarray, factor: int) -> np.ndarray:
    """(k, rows, cols) -> (k, H, W) float32: the mean of each `factor` x `factor` block of pixels
    (summed in float64). Trailing rows/columns that do not fill a block are dropped."""
    if factor == 1:
        return frames.astype(np.float32)  # a 1 x 1 block is the pixel: no float64 copy of a whole slab
    k, rows, cols = frames.shape
    h, w = reduced_shape(rows, cols, factor)
    blocks = frames[:, : h * factor, : w * factor].reshape(k, h, factor, w, factor)
    return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)
