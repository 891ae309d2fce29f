"""LightningDataModule over one HDF5 file (a user's, or the built-in synthetic one)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, DistributedSampler

from cloudml.data.dataset import BatchOrder, Samples, keep_batch
from cloudml.data.frames import ChunkFrames, FrameStore, MemoryFrames, ScratchFrames
from cloudml.data.normalization import Normalizer, fit_statistics
from cloudml.data.schema import DataKeys, open_h5, read_metadata, readable
from cloudml.data.splits import make_split
from cloudml.data.synthetic import SyntheticConfig, ensure_synthetic
from cloudml.errors import CloudMLError


def resolve_path(path: Optional[str], synthetic: Optional[dict], cache_dir: Optional[str]) -> Path:
    """The user's file, or (path None) the cached built-in synthetic file, generated once."""
    if path:
        return Path(path).expanduser().resolve()
    return ensure_synthetic(SyntheticConfig(**(synthetic or {})), cache_dir)


class CloudDataModule(L.LightningDataModule):
    """Reads, checks and splits the file; serves normalised batches of dicts."""

    def __init__(
        self,
        path: Optional[str] = None,
        keys: Optional[dict] = None,
        split: Optional[dict] = None,
        batch_size: int = 64,
        num_workers: int = 0,
        memory_budget_mb: float = 2048,
        cache_dir: Optional[str] = None,
        scratch_dir: Union[str, None, bool] = None,
        synthetic: Optional[dict] = None,
    ):
        super().__init__()
        self.path_arg, self.synthetic, self.cache_dir, self.scratch_dir = path, synthetic, cache_dir, scratch_dir
        self.keys = DataKeys(**(keys or {}))
        self.split_cfg = dict(split or {})
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.memory_budget_mb = float(memory_budget_mb)
        self.train_set: Optional[Samples] = None
        self.val_set: Optional[Samples] = None

    def setup(self, stage: Optional[str] = None) -> None:
        if self.train_set is not None:
            return
        self.path = resolve_path(self.path_arg, self.synthetic, self.cache_dir)
        self.meta = meta = read_metadata(self.path, self.keys)
        self.split = split = make_split(meta, **self.split_cfg)
        if self.batch_size < 1 or self.batch_size > len(split.train):
            raise CloudMLError(
                f"data.batch_size={self.batch_size}: expected 1..{len(split.train)} (the training split's size)"
            )
        rows_bytes = (len(split.train) + len(split.val)) * meta.image_bytes / meta.n
        self.in_memory = rows_bytes <= self.memory_budget_mb * 2**20
        # The file's frames are decompressed once, into the frame stores, which sum their
        # statistics on the way; the stores are then normalised with the training split's.
        stores = {}
        try:
            with open_h5(self.path) as f, readable(self.path, f"key '{self.keys.images}'"):
                scalars = f[self.keys.scalars][()].astype(np.float64) if self.keys.scalars else np.zeros((meta.n, 0))
                # 3/4 of the lazy cache for training (its shuffle windows), 1/4 for validation (read in order)
                for name, share in (("train", 0.75), ("val", 0.25)):
                    stores[name] = self._frame_store(f[self.keys.images], getattr(split, name), share)
            self.stats = fit_statistics(meta, split, scalars, {name: s.statistics for name, s in stores.items()})
            self.normalizer = Normalizer(self.stats)
            for store in stores.values():
                store.normalize(self.normalizer.images)
        except BaseException:
            for store in stores.values():  # nothing left behind: reader threads, scratch copies
                store.close()
            raise
        self.train_set = self._samples(stores["train"], split.train, scalars)
        self.val_set = self._samples(stores["val"], split.val, scalars)

    def _frame_store(self, dset, rows: np.ndarray, share: float) -> FrameStore:
        """The split's frames in memory when the splits fit the budget, else lazily: from a
        scratch copy, or (data.scratch_dir=false) from the file's chunks."""
        if self.in_memory:
            return MemoryFrames(dset, rows)
        # Lazy reading caches whole blocks in half the budget (the other half: everything else),
        # shared out between the DataLoader workers, each of which holds its own caches.
        cache_mb = self.memory_budget_mb / 2 / max(1, self.num_workers) * share
        if self.scratch_dir is False:
            return ChunkFrames(dset, rows, cache_mb)
        return ScratchFrames(dset, rows, cache_mb, self.scratch_dir)

    def _samples(self, frames: FrameStore, rows: np.ndarray, scalars: np.ndarray) -> Samples:
        """The Dataset of the split at file `rows`: its frames, normalised scalars and target, flights."""
        flight = self.meta.flight[rows] if self.meta.flight is not None else np.full(len(rows), -1)
        return Samples(frames, rows, self.normalizer.scalars(scalars[rows]).astype(np.float32),
                       self.normalizer.target(self.meta.target[rows]).astype(np.float32), flight)  # fmt: skip

    def teardown(self, stage: Optional[str] = None) -> None:
        """Stop lazy reading's threads and delete its scratch copies; a later `setup` builds
        the datasets again."""
        for dataset in (self.train_set, self.val_set):
            if dataset is not None:
                dataset.close()
        self.train_set = self.val_set = None

    # -- what the model and the run need to know ---------------------------------------
    @property
    def n_scalars(self) -> int:
        return len(self.meta.scalar_names)

    @property
    def frame_shape(self) -> tuple:
        return self.meta.frame_shape

    def describe(self) -> dict:
        """data.json: where the data came from and how it was split (read by analyze.py)."""
        return {
            "path": str(self.path),
            "keys": {k: getattr(self.keys, k) for k in ("images", "scalars", "target", "flight", "time")},
            **self.split.describe(),
            "n": self.meta.n,
            "frame_shape": list(self.meta.frame_shape),
            "in_memory": self.in_memory,
            "oracle_r2": self.meta.attrs.get("oracle_r2"),
            "synthetic": None if self.path_arg else self.synthetic,
        }

    # -- loaders ------------------------------------------------------------------------
    def _loader(self, dataset: Samples, train: bool) -> DataLoader:
        world = self.trainer.world_size if self.trainer is not None else 1
        drop_last = train and len(dataset) > self.batch_size  # a tiny last batch makes var(pred) noise
        workers = dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0, collate_fn=keep_batch)
        if world > 1:  # validation must not pad with repeated samples (metrics would count them twice)
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            rank = self.trainer.global_rank
            sampler = (
                DistributedSampler(dataset, world, rank, shuffle=True, drop_last=True)
                if train
                else UnrepeatedDistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
            )
            return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, drop_last=drop_last, **workers)
        frames = dataset.frames  # blocks read once an epoch; the main process prefetches only without workers
        order = BatchOrder(len(dataset), self.batch_size, shuffle=train, drop_last=drop_last,
                           seed=int(self.split_cfg.get("seed") or 0), blocks=frames.block_of_position,
                           window=frames.window, prefetch=None if self.num_workers else frames.prefetch)  # fmt: skip
        return DataLoader(dataset, batch_sampler=order, **workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)
