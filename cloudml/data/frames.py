"""Frame stores: where a split's frames live while a run reads them, behind one interface.

A store reads the raw frames of a split's rows once, at set-up, and sums their statistics
from what it read; after `normalize` it serves them normalised by position in the split. Three
stores: `MemoryFrames` (the split fits the memory budget), `ScratchFrames` (blocks of an
uncompressed scratch copy) and `ChunkFrames` (blocks of the file's own chunks, decompressed
every epoch). The lazy two also say how to order an epoch so that each block is read once.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional

import h5py
import numpy as np

from cloudml.data.lazy import BlockCache, ScratchCopy
from cloudml.data.schema import frame_row_shape, frame_statistics, read_images, read_statistics, slabs

Normalize = Callable[[np.ndarray], np.ndarray]  # raw float32 frames (n, T, C, H, W) -> normalised, in place


class FrameStore:
    """The frames of a split: `statistics` of the raw frames (see `frame_statistics`), then,
    after `normalize`, `frames(positions)` as float32 (n, T, C, H, W).

    What block-aware shuffling needs: `block_of_position` (None where any order reads equally
    fast), `window` (blocks a shuffle window may span) and `prefetch` (None, or
    `BlockCache.prefetch`: read a window's blocks ahead).
    """

    statistics: dict
    block_of_position: Optional[np.ndarray] = None
    window: int = 1
    prefetch: Optional[Callable] = None

    def normalize(self, normalize: Normalize) -> None:
        raise NotImplementedError

    def frames(self, positions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the store holds outside this process's memory (threads, files)."""


class MemoryFrames(FrameStore):
    """The frames of `rows`, read whole into memory."""

    def __init__(self, dset: h5py.Dataset, rows: np.ndarray):
        self.images = read_images(dset, rows)

    @cached_property
    def statistics(self) -> dict:
        # Summed when first asked, once every split is read: summing one split before the next
        # was read kept ~10 MB more resident (the allocator reuses the freed slab temporaries).
        return frame_statistics(slabs(self.images))

    def normalize(self, normalize: Normalize) -> None:
        _ = self.statistics  # summed from the raw frames, before they change
        self.images = normalize(self.images)

    def frames(self, positions: np.ndarray) -> np.ndarray:
        return self.images[positions]


class _BlockFrames(FrameStore):
    """Frames read whole blocks at a time into a `BlockCache` of `cache_mb`, indexed by
    `_keys(positions)`; the epoch is shuffled within windows of half the cache's blocks."""

    def _start_cache(self, positions: int, n_keys: int, block_rows: int, row_shape: tuple, cache_mb: float,
                     threads: int) -> None:  # fmt: skip
        slots = cache_mb * 2**20 // (block_rows * int(np.prod(row_shape)) * 4)
        self.cache = BlockCache(n_keys, block_rows, row_shape, slots, self._load, threads)
        self.block_of_position = self._keys(np.arange(positions)) // block_rows
        self.window = max(1, self.cache.slots // 2)  # the next window is read while this one is served
        self.prefetch = self.cache.prefetch

    def _keys(self, positions: np.ndarray) -> np.ndarray:
        return positions

    def _load(self, block: int, out: np.ndarray) -> None:
        raise NotImplementedError

    def frames(self, positions: np.ndarray) -> np.ndarray:
        return self.cache.gather(self._keys(positions))

    def close(self) -> None:
        """Stop the reader threads; the store is unusable afterwards."""
        self.cache.close()


class ScratchFrames(_BlockFrames):
    """The frames of `rows`, copied once, uncompressed, to a `ScratchCopy` in `directory`, and
    read from it in blocks of ~1 MB of consecutive positions."""

    def __init__(self, dset: h5py.Dataset, rows: np.ndarray, cache_mb: float, directory: Optional[str]):
        self.scratch = ScratchCopy(dset, rows, directory, frame_row_shape(dset))
        self.statistics = self.scratch.statistics
        block_rows = max(1, 2**20 // self.scratch.row_bytes)
        self._start_cache(len(rows), len(rows), block_rows, self.scratch.row_shape, cache_mb, threads=2)

    def normalize(self, normalize: Normalize) -> None:
        self.scratch.normalize(normalize)

    def _load(self, block: int, out: np.ndarray) -> None:
        self.scratch.read_into(block * self.cache.block_rows, out)

    def close(self) -> None:
        """Stop the reader threads and delete the scratch copy."""
        super().close()
        self.scratch.remove()


class ChunkFrames(_BlockFrames):
    """The frames of `rows`, read from the file a chunk at a time (each chunk decompressed
    once per epoch, no disk used); the cache is indexed by file row."""

    def __init__(self, dset: h5py.Dataset, rows: np.ndarray, cache_mb: float):
        self.path, self.key, self.rows = Path(dset.file.filename), dset.name, np.asarray(rows, np.int64)
        self.statistics = read_statistics(dset, self.rows)
        self._normalize: Optional[Normalize] = None
        self._h5: Optional[h5py.File] = None
        block_rows = dset.chunks[0] if dset.chunks else 64
        # One reader thread: h5py runs one call at a time, and the handle is opened lazily.
        self._start_cache(len(rows), dset.shape[0], block_rows, frame_row_shape(dset), cache_mb, threads=1)

    def __getstate__(self):
        return {**self.__dict__, "_h5": None}  # h5py handles cannot cross processes

    def normalize(self, normalize: Normalize) -> None:
        self._normalize = normalize

    def _keys(self, positions: np.ndarray) -> np.ndarray:
        return self.rows[positions]

    def close(self) -> None:
        """Stop the reader thread and close this process's handle on the file."""
        super().close()
        if self._h5 is not None and self._h5_pid == os.getpid():
            self._h5.close()
        self._h5 = None

    def _load(self, block: int, out: np.ndarray) -> None:
        if self._h5 is None or self._h5_pid != os.getpid():  # one handle per worker process
            self._h5, self._h5_pid = h5py.File(self.path, "r"), os.getpid()
        start = block * self.cache.block_rows
        out[:] = self._normalize(read_images(self._h5[self.key], np.arange(start, start + len(out))))
