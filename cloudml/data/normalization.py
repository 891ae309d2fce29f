"""Normalisation statistics, fit on the training split only, and the z-scoring they define."""

from __future__ import annotations

import numpy as np

from cloudml.data.schema import FileMetadata
from cloudml.data.splits import Split
from cloudml.errors import CloudMLError


def fit_statistics(meta: FileMetadata, split: Split, scalars: np.ndarray, frames: dict) -> dict:
    """normalization.json: frame statistics of the training split (`frames`: split name ->
    `frame_statistics` of its raw frames; every split must be finite), scalars and target."""
    for name, found in frames.items():
        if found["nonfinite"]:
            raise CloudMLError(
                f"{meta.path}: key '{meta.keys.images}' has {found['nonfinite']} non-finite pixels in the {name} split, expected finite values"
            )
    train = split.train
    target = meta.target[train]
    return {
        "fit_on": "train",
        "images": {k: frames["train"][k] for k in ("mean", "std", "min", "max")},
        "scalars": {
            "names": meta.scalar_names,
            "mean": scalars[train].mean(0).tolist(),
            "std": scalars[train].std(0).tolist(),
        },
        "target": {"mean": float(target.mean()), "std": float(target.std()), "units": "km"},
    }


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
