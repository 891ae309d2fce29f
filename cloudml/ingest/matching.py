"""Lidar profile -> camera frame matching: nearest frame in time, one profile per frame."""

from __future__ import annotations

import numpy as np


def nearest_frames(frame_times: np.ndarray, times: np.ndarray) -> tuple:
    """For each time, the index of the nearest frame (a tie goes to the earlier frame) and
    dt = time - frame time (s). `frame_times` must be increasing."""
    if len(frame_times) == 1:
        return np.zeros(len(times), dtype=int), times - frame_times[0]
    right = np.clip(np.searchsorted(frame_times, times), 1, len(frame_times) - 1)
    left = right - 1
    later = np.abs(frame_times[right] - times) < np.abs(times - frame_times[left])
    frame = np.where(later, right, left)
    return frame, times - frame_times[frame]


def closest_per_frame(frame: np.ndarray, abs_dt: np.ndarray) -> np.ndarray:
    """Mask of the profiles kept when several hit one frame: the one with the smallest |dt|
    (a tie goes to the earlier profile); never the public program's 'last one wins'."""
    order = np.lexsort((np.arange(len(frame)), abs_dt, frame))  # by frame, then |dt|, then profile
    first = np.ones(len(order), dtype=bool)
    first[1:] = frame[order][1:] != frame[order][:-1]
    keep = np.zeros(len(frame), dtype=bool)
    keep[order[first]] = True
    return keep
