"""A torch Dataset over samples of the HDF5 file, normalised with training-split statistics.

Batches are read whole through `__getitems__` (one sorted h5py read per batch, not one per
sample). The file is held in memory when the rows fit the memory budget, and otherwise read
lazily with one h5py handle per DataLoader worker process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

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
    ):
        self.path, self.keys, self.rows = Path(path), keys, np.asarray(rows, np.int64)
        self.norm = normalizer
        self.target = normalizer.target(target[self.rows]).astype(np.float32)
        self.scalars = normalizer.scalars(scalars[self.rows]).astype(np.float32)
        self.images: Optional[np.ndarray] = None
        self._h5: Optional[h5py.File] = None
        self._pid: Optional[int] = None
        if in_memory:
            with h5py.File(self.path, "r") as f:
                self.images = normalizer.images(read_images(f[keys.images], self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def _dataset(self) -> h5py.Dataset:
        if self._h5 is None or self._pid != os.getpid():  # one handle per worker process
            self._h5 = h5py.File(self.path, "r", rdcc_nbytes=64 * 2**20)
            self._pid = os.getpid()
        return self._h5[self.keys.images]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h5"] = None  # h5py handles cannot cross process boundaries
        return state

    def __getitems__(self, positions: list) -> dict:
        pos = np.asarray(positions, np.int64)
        if self.images is not None:
            images = self.images[pos]
        else:
            images = self.norm.images(read_images(self._dataset(), self.rows[pos]))
        return {
            "images": torch.from_numpy(np.ascontiguousarray(images, np.float32)),
            "scalars": torch.from_numpy(self.scalars[pos]),
            "target": torch.from_numpy(self.target[pos]),
            "index": torch.from_numpy(self.rows[pos]),
        }

    def __getitem__(self, position: int) -> dict:
        return {k: v[0] for k, v in self.__getitems__([position]).items()}


def keep_batch(batch: dict) -> dict:
    """collate_fn for datasets whose `__getitems__` already returns a batch."""
    return batch
