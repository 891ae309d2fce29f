"""T-frame windows centred on the matched frame, which never leave the file or span a time gap."""

from __future__ import annotations

import numpy as np


def gap_steps(frame_times: np.ndarray, factor: float) -> np.ndarray:
    """(n - 1,) True where the step from frame i to i + 1 is a gap: longer than `factor` x the
    file's median frame step (at ~1 frame/s and factor 1.5: a frame or more is missing)."""
    steps = np.diff(frame_times)
    if len(steps) == 0:
        return np.zeros(0, dtype=bool)
    return steps > factor * np.median(steps)


def centred_windows(centres: np.ndarray, n_frames: int, length: int, gaps: np.ndarray) -> tuple:
    """(frames (n, length) int, reason (n,) str): the window of `length` (odd) frames around each
    centre, and '' or why it is unusable: 'window_edge' (it leaves the file) or 'window_gap'."""
    half = length // 2
    frames = centres[:, None] + np.arange(-half, half + 1)[None, :]
    edge = (frames[:, 0] < 0) | (frames[:, -1] >= n_frames)
    gaps_before = np.concatenate([[0], np.cumsum(gaps)])  # gaps between frame 0 and frame i
    first, last = np.clip(frames[:, 0], 0, n_frames - 1), np.clip(frames[:, -1], 0, n_frames - 1)
    gap = gaps_before[last] > gaps_before[first]
    reason = np.where(edge, "window_edge", np.where(gap, "window_gap", ""))
    return frames, reason.astype(object)
