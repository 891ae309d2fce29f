"""Shared fixtures: tiny real HDF5 files and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf

from cloudml.data.synthetic import SyntheticConfig, write

REPO = Path(__file__).resolve().parents[1]
TINY = SyntheticConfig(n_flights=4, samples_per_flight=40, size=16, seed=3)
# Overrides that make a real training run take a few seconds.
TINY_RUN = [
    "data.synthetic.n_flights=4", "data.synthetic.samples_per_flight=40", "data.synthetic.size=16",
    "data.batch_size=16", "model.dim=16", "model.channels=[8,16]", "model.layers=1", "trainer.max_epochs=2",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_h5(tmp_path_factory) -> Path:
    """A small synthetic file in the unified schema (4 flights x 40 samples of 3x16x16)."""
    return write(TINY, tmp_path_factory.mktemp("data") / "tiny.h5")


def write_h5(path: Path, n: int = 60, flights: int = 3, **overrides) -> Path:
    """A schema-valid file with random content; `overrides` replace arrays (None drops a key)."""
    rng = np.random.default_rng(0)
    arrays = {
        "images": rng.normal(size=(n, 3, 8, 8)).astype(np.float32),
        "scalars": rng.normal(size=(n, 2)).astype(np.float32),
        "target": rng.uniform(0.2, 1.8, n).astype(np.float32),
        "flight": (np.arange(n) * flights // n).astype(np.int32),
        "time": np.arange(n, dtype=np.float64),
    }
    arrays.update(overrides)
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = 1
        for key, value in arrays.items():
            if value is not None:
                f.create_dataset(key, data=value)
        if arrays.get("flight") is not None and np.asarray(arrays["flight"]).dtype.kind == "i":
            f["flight"].attrs["names"] = [f"f{i}" for i in range(int(np.max(arrays["flight"])) + 1)]
    return path


def run_cli(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python <args>` as a user would, with the synthetic cache in the test's tmp dir."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def jobs_by_lambda(sweep_dir) -> dict:
    """λ -> job directory, read from each job's Hydra overrides record."""
    out = {}
    for overrides in sweep_dir.glob("*/.hydra/overrides.yaml"):
        lam = next(o for o in OmegaConf.load(overrides) if o.startswith("loss.variance_lambda="))
        out[float(lam.split("=")[1])] = overrides.parent.parent
    return out


@pytest.fixture
def cli_env(tmp_path) -> dict:
    return {"CLOUDML_CACHE": str(tmp_path / "cache")}
