"""A torch Dataset over samples of the HDF5 file, normalised with training-split statistics.

Batches are read whole through `__getitems__`, given as numpy index arrays by `BatchOrder`.
The file is held in memory when the rows fit the memory budget. Otherwise it is read lazily,
one whole HDF5 chunk at a time into a small cache (one h5py handle per DataLoader worker),
and the training order is shuffled within windows of chunks, so that every compressed chunk
is decompressed once per epoch instead of once per sample.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cloudml.data.schema import DataKeys, read_images


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
        return (x - self.img_mean) / np.maximum(self.img_std, 1e-8)

    def scalars(self, x: np.ndarray) -> np.ndarray:
        return (x - self.sc_mean) / np.maximum(self.sc_std, 1e-8)

    def target(self, y: np.ndarray) -> np.ndarray:
        return (y - self.t_mean) / self.t_std

    def target_to_km(self, y):
        return y * self.t_std + self.t_mean


class H5Samples(Dataset):
    """Samples `rows` of the file as dicts of tensors: images (T, C, H, W), scalars, target, index."""

    def __init__(
        self,
        path: Path,
        keys: DataKeys,
        rows: np.ndarray,
        target: np.ndarray,
        scalars: np.ndarray,
        normalizer: Normalizer,
        in_memory: bool,
        cache_mb: float = 64,
    ):
        self.path, self.keys, self.rows = Path(path), keys, np.asarray(rows, np.int64)
        self.norm = normalizer
        self.target = normalizer.target(target[self.rows]).astype(np.float32)
        self.scalars = normalizer.scalars(scalars[self.rows]).astype(np.float32)
        self.images: Optional[np.ndarray] = None
        self._h5: Optional[h5py.File] = None
        self._pid: Optional[int] = None
        self._blocks: OrderedDict = OrderedDict()  # chunk id -> normalised frames (lazy mode)
        with h5py.File(self.path, "r") as f:
            dset = f[keys.images]
            self.n_file = dset.shape[0]
            self.chunk_rows = dset.chunks[0] if dset.chunks else 64  # rows read together
            chunk_bytes = self.chunk_rows * int(np.prod(dset.shape[1:])) * 4  # as float32
            self.cache_chunks = max(1, int(cache_mb * 2**20 // chunk_bytes))  # lazy mode's LRU size
            if in_memory:
                self.images = normalizer.images(read_images(dset, self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def _dataset(self) -> h5py.Dataset:
        if self._h5 is None or self._pid != os.getpid():  # one handle per worker process
            self._h5 = h5py.File(self.path, "r", rdcc_nbytes=64 * 2**20)
            self._pid = os.getpid()
        return self._h5[self.keys.images]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h5"], state["_blocks"] = None, OrderedDict()  # h5py handles cannot cross processes
        return state

    @property
    def chunk_of_position(self) -> np.ndarray:
        """HDF5 chunk index of every sample (for chunk-aware shuffling)."""
        return self.rows // self.chunk_rows

    def _block(self, chunk: int) -> np.ndarray:
        """Normalised frames of one HDF5 chunk, from a small LRU cache."""
        if chunk in self._blocks:
            self._blocks.move_to_end(chunk)
            return self._blocks[chunk]
        start = chunk * self.chunk_rows
        block = self._dataset()[start : min(start + self.chunk_rows, self.n_file)]
        block = np.asarray(block, np.float32)
        block = self.norm.images(block[:, :, None] if block.ndim == 4 else block)
        self._blocks[chunk] = block
        if len(self._blocks) > self.cache_chunks:
            self._blocks.popitem(last=False)
        return block

    def _read_lazily(self, rows: np.ndarray) -> np.ndarray:
        chunks = rows // self.chunk_rows
        out = None
        for chunk in np.unique(chunks):
            block = self._block(int(chunk))
            if out is None:
                out = np.empty((len(rows), *block.shape[1:]), np.float32)
            here = chunks == chunk
            out[here] = block[rows[here] - chunk * self.chunk_rows]
        return out

    def __getitems__(self, positions: list) -> dict:
        pos = np.asarray(positions, np.int64)
        if self.images is not None:
            images = self.images[pos]
        else:
            images = self._read_lazily(self.rows[pos])
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

    With `chunks` (lazy reading), the order is shuffled within windows of `window` whole
    HDF5 chunks taken in random order: a batch mixes samples of up to `window` chunks, and
    each chunk is read once per epoch. Lightning calls `set_epoch`, so a resumed run sees
    the same order as an uninterrupted one.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int = 0,
                 chunks: Optional[np.ndarray] = None, window: int = 16):  # fmt: skip
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.chunks, self.window, self.epoch = seed, chunks, max(1, window), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.chunks is None:
            return rng.permutation(self.n)
        ids = rng.permutation(np.unique(self.chunks))
        parts = []
        for i in range(0, len(ids), self.window):
            members = np.flatnonzero(np.isin(self.chunks, ids[i : i + self.window]))
            parts.append(rng.permutation(members))
        return np.concatenate(parts)

    def __iter__(self):
        order = self.order()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)


def keep_batch(batch: dict) -> dict:
    """collate_fn for datasets whose `__getitems__` already returns a batch."""
    return batch
