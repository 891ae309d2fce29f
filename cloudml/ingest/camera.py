"""The camera file: frame times, frame size, and cropped frames read a bounded slab at a time."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from cloudml.errors import CloudMLError
from cloudml.ingest.options import Layout
from cloudml.ingest.rawfiles import check_times, dataset, open_h5, open_raw, reading, same_rows


@dataclass
class Camera:
    """A camera file's frame times and frame geometry (no pixels)."""

    path: Path
    times: np.ndarray  # (n_frames,) epoch s, UTC
    rows: int
    cols: int
    itemsize: int

    def __len__(self) -> int:
        return len(self.times)


def read_camera(path: Path, layout: Layout, crop_rows: tuple) -> Camera:
    """Check the frames' dataset and read the frame times; the crop must fit inside a frame."""
    with open_raw(path, "camera") as f:
        signal = dataset(f, layout.camera_signal, "camera frames", ("n_frames", "rows", "cols"), Layout.key("camera_signal"))
        time = dataset(f, layout.camera_time, "frame times, epoch s", ("n_frames",), Layout.key("camera_time"))
        same_rows(f, time, signal.shape[0], layout.camera_signal)
        times = time[()].astype(np.float64)
        n, rows, cols = signal.shape
        if crop_rows[1] > rows:
            raise CloudMLError(
                f"{path}: dataset '{layout.camera_signal}' has frames of {rows} rows, "
                f"expected at least {crop_rows[1]} for --crop-rows {crop_rows[0]}:{crop_rows[1]}"
            )
        itemsize = signal.dtype.itemsize
    check_times(path, layout.camera_time, times, "frame times")
    return Camera(path, times, rows, cols, itemsize)


def slab_frames(camera: Camera, crop_rows: tuple, slab_bytes: int) -> int:
    """How many cropped raw frames fit in `slab_bytes` (at least one)."""
    return max(1, slab_bytes // ((crop_rows[1] - crop_rows[0]) * camera.cols * camera.itemsize))


@contextmanager
def frame_reader(camera: Camera, layout: Layout, crop_rows: tuple, slab_bytes: int):
    """Yield `read(start, stop)`: raw frames [start, stop) of the crop rows only, the file kept open.
    The chunk cache holds a slab, so runs of frames that share a compressed chunk decode it once."""
    with open_h5(camera.path, "camera", rdcc_nbytes=slab_bytes) as f:
        signal, crop = f[layout.camera_signal], slice(*crop_rows)

        def read(start: int, stop: int) -> np.ndarray:
            with reading(camera.path, "camera"):
                return signal[start:stop, crop, :]

        yield read


def runs(frames: np.ndarray, longest: int) -> Iterator[tuple]:
    """(start, stop) ranges covering the sorted distinct `frames`, each consecutive and <= `longest`."""
    if len(frames) == 0:
        return
    breaks = np.flatnonzero(np.diff(frames) > 1) + 1
    for segment in np.split(frames, breaks):
        for start in range(int(segment[0]), int(segment[-1]) + 1, longest):
            yield start, min(start + longest, int(segment[-1]) + 1)


def stream_windows(windows: np.ndarray, read: Callable[[int, int], np.ndarray], longest: int) -> Iterator[tuple]:
    """Yield (i, (T, H, W) frames) for each row of `windows` (frame indices, rows sorted by frame),
    reading only the frames they use, `longest` at a time, and holding a frame only until the
    last window that needs it has been yielded (memory: one read + T - 1 frames)."""
    cache: dict = {}
    i = 0
    for start, stop in runs(np.unique(windows), longest):
        cache.update(zip(range(start, stop), read(start, stop)))
        while i < len(windows) and windows[i, -1] < stop:
            yield i, np.stack([cache[j] for j in windows[i]])
            i += 1
        oldest = windows[i, 0] if i < len(windows) else stop
        for j in [j for j in cache if j < oldest]:
            del cache[j]
