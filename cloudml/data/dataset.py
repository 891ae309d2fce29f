"""A torch Dataset over one split's samples, and the order its batches are read in.

Batches are read whole through `__getitems__`, given as numpy index arrays by `BatchOrder`.
Frames come from a frame store (cloudml/data/frames.py); where it reads in blocks, the
training order is shuffled within windows of blocks, so that every block is read once per
epoch instead of once per sample.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cloudml.data.frames import FrameStore


class Samples(Dataset):
    """A split's samples as batches of tensors: images (n, T, C, H, W) from `frames`, and the
    split's normalised `scalars` and `target`, file rows (`index`) and `flight` ids (int64,
    -1 where the file has none), all aligned by position in the split."""

    def __init__(self, frames: FrameStore, index: np.ndarray, scalars: np.ndarray, target: np.ndarray,
                 flight: np.ndarray):  # fmt: skip
        self.frames, self.index = frames, np.asarray(index, np.int64)
        self.scalars, self.target, self.flight = scalars, target, np.asarray(flight, np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def close(self) -> None:
        """Release the frame store (reader threads, scratch copy); the dataset is unusable
        afterwards. (A multirun's jobs share one process: nothing may pile up.)"""
        self.frames.close()

    def __getitems__(self, positions: list) -> dict:
        pos = np.asarray(positions, np.int64)
        return {
            "images": torch.from_numpy(np.ascontiguousarray(self.frames.frames(pos), np.float32)),
            "scalars": torch.from_numpy(self.scalars[pos]),
            "target": torch.from_numpy(self.target[pos]),
            "index": torch.from_numpy(self.index[pos]),
            "flight": torch.from_numpy(self.flight[pos]),
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
