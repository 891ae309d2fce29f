"""LightningDataModule over one HDF5 file (a user's, or the built-in synthetic one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, DistributedSampler

from cloudml.data.dataset import BatchOrder, H5Samples, Normalizer, keep_batch
from cloudml.data.lazy import ScratchCopy
from cloudml.data.schema import (DataKeys, FileMetadata, frame_statistics, image_statistics, open_h5, read_images,
                                 read_metadata, readable, slabs)
from cloudml.data.splits import Split, make_split
from cloudml.data.synthetic import SyntheticConfig, ensure_synthetic
from cloudml.errors import CloudMLError
from cloudml.atomic import write_json, write_npz


def resolve_path(path: Optional[str], synthetic: Optional[dict], cache_dir: Optional[str]) -> Path:
    """The user's file, or (path None) the cached built-in synthetic file, generated once."""
    if path:
        return Path(path).expanduser().resolve()
    return ensure_synthetic(SyntheticConfig(**(synthetic or {})), cache_dir)


def fit_statistics(meta: FileMetadata, split: Split, scalars: np.ndarray, frames: Optional[dict] = None,
                   copies: Optional[dict] = None) -> dict:  # fmt: skip
    """Normalisation statistics from the training split only (the program fit them on validation too).
    Frame statistics come from `frames` (split name -> raw frames held in memory), from
    `copies` (split name -> ScratchCopy, which summed them while copying) or from the file."""
    train = split.train
    stats = {}
    for name, rows in (("train", train), ("val", split.val)):
        if frames:
            found = frame_statistics(slabs(frames[name]))
        elif copies:
            found = copies[name].statistics
        else:
            found = image_statistics(meta.path, meta.keys, rows)
        if found["nonfinite"]:
            raise CloudMLError(
                f"{meta.path}: key '{meta.keys.images}' has {found['nonfinite']} non-finite pixels in the {name} split, expected finite values"
            )
        stats[name] = found
    target = meta.target[train]
    return {
        "fit_on": "train",
        "images": {k: stats["train"][k] for k in ("mean", "std", "min", "max")},
        "scalars": {
            "names": meta.scalar_names,
            "mean": scalars[train].mean(0).tolist(),
            "std": scalars[train].std(0).tolist(),
        },
        "target": {"mean": float(target.mean()), "std": float(target.std()), "units": "km"},
    }


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
        self.train_set: Optional[H5Samples] = None
        self.val_set: Optional[H5Samples] = None

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
        # The file's frames are decompressed once: read into memory, or copied uncompressed to
        # scratch files (lazy); either way the statistics are summed from what was read.
        frames, copies = {}, {}
        try:
            with open_h5(self.path) as f, readable(self.path, f"key '{self.keys.images}'"):
                scalars = f[self.keys.scalars][()].astype(np.float64) if self.keys.scalars else np.zeros((meta.n, 0))
                for name, rows in (("train", split.train), ("val", split.val)):
                    if self.in_memory:
                        frames[name] = read_images(f[self.keys.images], rows)
                    elif self.scratch_dir is not False:
                        copies[name] = ScratchCopy(f[self.keys.images], rows, self.scratch_dir, meta.frame_shape)
            self.stats = fit_statistics(meta, split, scalars, frames, copies)
            self.normalizer = Normalizer(self.stats)
            # Lazy reading caches whole blocks in half the budget (the other half: everything else):
            # 3/4 of it for training (its shuffle windows), 1/4 for validation (read in order),
            # shared out between the DataLoader workers, each of which holds its own caches.
            cache_mb = self.memory_budget_mb / 2 / max(1, self.num_workers)
            make = lambda name, share: H5Samples(self.path, self.keys, getattr(split, name), meta.target, scalars,
                                                 self.normalizer, frames.pop(name, None), cache_mb * share,
                                                 copies.get(name))  # fmt: skip
            self.train_set = make("train", 0.75)
            self.val_set = make("val", 0.25)
        except BaseException:
            for copy in copies.values():  # nothing left behind in the scratch directory
                copy.remove()
            self.teardown()
            raise

    def teardown(self, stage: Optional[str] = None) -> None:
        """Delete lazy mode's scratch copies; a later `setup` builds the datasets again."""
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

    def write_run_files(self, out_dir: Path) -> None:
        """Save the split and its normalisation statistics with the run."""
        write_json(out_dir / "data.json", json.loads(json.dumps(self.describe(), default=float)))
        write_json(out_dir / "normalization.json", self.stats)
        write_npz(out_dir / "split.npz", train_index=self.split.train, val_index=self.split.val)

    # -- loaders ------------------------------------------------------------------------
    def _loader(self, dataset: H5Samples, train: bool) -> DataLoader:
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
        order = BatchOrder(len(dataset), self.batch_size, shuffle=train, drop_last=drop_last,
                           seed=int(self.split_cfg.get("seed") or 0),
                           blocks=None if self.in_memory else dataset.block_of_position,
                           window=1 if self.in_memory else max(1, dataset.cache.slots // 2),
                           prefetch=None if self.in_memory or self.num_workers else dataset.cache.prefetch)  # fmt: skip
        return DataLoader(dataset, batch_sampler=order, **workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)
