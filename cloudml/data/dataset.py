"""A torch Dataset over samples of the HDF5 file, normalised with training-split statistics.

Batches are read whole through `__getitems__`, given as numpy index arrays by `BatchOrder`.
The split is held in memory when it fits the memory budget. Otherwise it is read lazily in
blocks (cloudml/data/lazy.py), and the training order is shuffled within windows of blocks,
so that every block is read once per epoch instead of once per sample.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cloudml.data.lazy import BlockCache, ScratchCopy
from cloudml.data.schema import DataKeys, frame_row_shape, open_h5, read_images, readable


class Normalizer:
    """z-scoring of frames (per channel), scalars (per feature) and target (km)."""

    def __init__(self, stats: dict):
        self.stats = stats
        self.img_mean = np.asarray(stats["images"]["mean"], np.float32)[None, None, :, None, None]
        self.img_std = np.asarray(stats["images"]["std"], np.float32)[None, None, :, None, None]
        self.sc_mean = np.asarray(stats["scalars"]["mean"], np.float32)
        self.sc_std = np.asarray(stats["scalars"]["std"], np.float32)
        self.t_mean = float(stats["target"]["mean"])
        self.t_std = float(stats["target"]["std"])

    def images(self, x: np.ndarray) -> np.ndarray:
        """Frames (n, T, C, H, W) float32, normalised in place: callers pass frames just read."""
        x -= self.img_mean
        x /= np.maximum(self.img_std, 1e-8)
        return x

    def scalars(self, x: np.ndarray) -> np.ndarray:
        return (x - self.sc_mean) / np.maximum(self.sc_std, 1e-8)

    def target(self, y: np.ndarray) -> np.ndarray:
        return (y - self.t_mean) / self.t_std

    def target_to_km(self, y):
        return y * self.t_std + self.t_mean


class H5Samples(Dataset):
    """Samples `rows` of the file as dicts of tensors: images (T, C, H, W), scalars, target, index.

    Frames are held in memory when `images` (the raw frames of `rows`, normalised in place)
    are given; otherwise they are read in blocks through a `BlockCache` of `cache_mb`, from
    `scratch` (a `ScratchCopy` of the raw frames of `rows`, normalised in place) or, without
    one, from the file's own chunks (decompressed every epoch).
    """

    def __init__(
        self,
        path: Path,
        keys: DataKeys,
        rows: np.ndarray,
        target: np.ndarray,
        scalars: np.ndarray,
        normalizer: Normalizer,
        images: Optional[np.ndarray] = None,
        cache_mb: float = 64,
        scratch: Optional[ScratchCopy] = None,
    ):
        self.path, self.keys, self.rows = Path(path), keys, np.asarray(rows, np.int64)
        self.norm = normalizer
        self.target = normalizer.target(target[self.rows]).astype(np.float32)
        self.scalars = normalizer.scalars(scalars[self.rows]).astype(np.float32)
        self.images = None if images is None else normalizer.images(images)
        self.scratch = scratch
        self.cache: Optional[BlockCache] = None
        self._h5: Optional[h5py.File] = None
        if self.images is not None:
            return
        if scratch is not None:  # blocks of ~1 MB of consecutive positions
            scratch.normalize(normalizer.images)
            row_shape, block_rows = scratch.row_shape, max(1, 2**20 // scratch.row_bytes)
            n_keys, load = len(self.rows), self._load_scratch
        else:  # blocks are the file's chunks, each decompressed once per epoch
            with open_h5(self.path) as f, readable(self.path, f"key '{keys.images}'"):
                dset = f[keys.images]
                row_shape, block_rows = frame_row_shape(dset), dset.chunks[0] if dset.chunks else 64
                n_keys, load = dset.shape[0], self._load_chunk
        slots = cache_mb * 2**20 // (block_rows * int(np.prod(row_shape)) * 4)
        threads = 2 if self.scratch is not None else 1  # h5py runs one call at a time, and its handle is opened lazily
        self.cache = BlockCache(n_keys, block_rows, row_shape, slots, load, threads)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self):
        return {**self.__dict__, "_h5": None}  # h5py handles cannot cross processes

    def _load_scratch(self, block: int, out: np.ndarray) -> None:
        self.scratch.read_into(block * self.cache.block_rows, out)

    def _load_chunk(self, block: int, out: np.ndarray) -> None:
        if self._h5 is None or self._h5_pid != os.getpid():  # one handle per worker process
            self._h5, self._h5_pid = h5py.File(self.path, "r"), os.getpid()
        start = block * self.cache.block_rows
        out[:] = self.norm.images(read_images(self._h5[self.keys.images], np.arange(start, start + len(out))))

    def _cache_keys(self, positions: np.ndarray) -> np.ndarray:
        """What the block cache is indexed by: positions (scratch copy) or file rows (chunks)."""
        return positions if self.scratch is not None else self.rows[positions]

    @property
    def block_of_position(self) -> np.ndarray:
        """Cache block of every sample (for block-aware shuffling in lazy mode)."""
        return self._cache_keys(np.arange(len(self.rows))) // self.cache.block_rows

    def close(self) -> None:
        """Stop the reader threads and delete the scratch copy (lazy mode); the dataset is
        unusable afterwards. (A multirun's jobs share one process: nothing may pile up.)"""
        if self.cache is not None:
            self.cache.close()
        if self.scratch is not None:
            self.scratch.remove()

    def __getitems__(self, positions: list) -> dict:
        pos = np.asarray(positions, np.int64)
        if self.images is not None:
            images = self.images[pos]
        else:
            images = self.cache.gather(self._cache_keys(pos))
        return {
            "images": torch.from_numpy(np.ascontiguousarray(images, np.float32)),
            "scalars": torch.from_numpy(self.scalars[pos]),
            "target": torch.from_numpy(self.target[pos]),
            "index": torch.from_numpy(self.rows[pos]),
        }

    def __getitem__(self, position: int) -> dict:
        return {k: v[0] for k, v in self.__getitems__([position]).items()}


class BatchOrder(Sampler):
    """Batches of dataset positions as numpy arrays, reshuffled every epoch.

    With `blocks` (lazy reading: the cache block of every position), the order is shuffled
    within windows of `window` whole blocks taken in random order: a batch mixes samples of
    up to `window` blocks, and each block is read once per epoch. `prefetch(blocks, keep,
    restart)` is told each window's blocks as the batches of the window before it begin. Lightning calls
    `set_epoch`, so a resumed run sees the same order as an uninterrupted one.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int = 0,
                 blocks: Optional[np.ndarray] = None, window: int = 16, prefetch: Optional[Callable] = None):  # fmt: skip
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.blocks, self.window, self.epoch = seed, blocks, max(1, window), 0
        self.prefetch = prefetch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def windows(self) -> list:
        """The epoch's order as windows: a list of (positions, their blocks)."""
        if self.blocks is None:
            rng = np.random.default_rng([self.seed, self.epoch])
            return [(rng.permutation(self.n) if self.shuffle else np.arange(self.n), None)]
        if not self.shuffle:  # in order, windows of consecutive blocks
            ids = np.unique(self.blocks)
            return [(np.flatnonzero(np.isin(self.blocks, w)), w) for w in np.array_split(ids, -(-len(ids) // self.window))]
        rng = np.random.default_rng([self.seed, self.epoch])
        ids = rng.permutation(np.unique(self.blocks))
        parts = []
        for i in range(0, len(ids), self.window):
            members = np.flatnonzero(np.isin(self.blocks, ids[i : i + self.window]))
            parts.append((rng.permutation(members), ids[i : i + self.window]))
        return parts

    def __iter__(self):
        windows = self.windows()
        order = np.concatenate([positions for positions, _ in windows])
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        if self.prefetch is None:
            for start in range(0, stop, self.batch_size):
                yield order[start : start + self.batch_size]
            return
        ends = np.cumsum([len(positions) for positions, _ in windows]).tolist()
        self.prefetch(windows[0][1], restart=True)
        window, prefetched = 0, 0  # the window the next batch begins in; the last one prefetched
        for start in range(0, stop, self.batch_size):
            while start >= ends[window]:
                window += 1
            if prefetched < window + 1 < len(windows):  # window - 1 is done: its slots are free
                prefetched = window + 1
                self.prefetch(windows[prefetched][1], keep=windows[window][1])
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)


def keep_batch(batch: dict) -> dict:
    """collate_fn for datasets whose `__getitems__` already returns a batch."""
    return batch
