"""Data loading throughput: the HDF5 DataModule against indexing the same arrays in memory.

    python bench/bench_data.py                 # 12 000 samples of 3x32x32, chunked + gzip
    python bench/bench_data.py --samples 3000  # quicker

Cases (each in its own process, so peak RSS is that case's alone):
  in-memory reference   numpy arrays in RAM, random batches by fancy indexing -> torch
  datamodule (fits)     CloudDataModule, file within data.memory_budget_mb (held in memory)
  datamodule (lazy)     CloudDataModule, file 3x larger than the budget (read from HDF5)
Prints batches/s, the ratio to the reference, peak RSS and the budget.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np


def write_file(path: Path, n: int) -> None:
    """A schema file chunked and gzip-compressed as a user would write it (64 samples a chunk)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (n, 3, 32, 32), np.float32, chunks=(64, 3, 32, 32), compression="gzip", compression_opts=4)
        for start in range(0, n, 4096):
            stop = min(n, start + 4096)
            images[start:stop] = rng.normal(size=(stop - start, 3, 32, 32)).astype(np.float32)
        f["scalars"] = rng.normal(size=(n, 2)).astype(np.float32)
        f["target"] = rng.uniform(0.1, 2.0, n).astype(np.float32)
        f["flight"] = (np.arange(n) * 20 // n).astype(np.int32)
        f["flight"].attrs["names"] = [f"f{i}" for i in range(20)]


def run_case(case: str, path: str, budget_mb: float, epochs: int, batch: int) -> dict:
    import torch

    if case != "reference":
        from cloudml.data.datamodule import CloudDataModule  # imports Lightning: part of the baseline
    torch.set_num_threads(1)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if case == "reference":
        with h5py.File(path) as f:
            images, scalars, target = f["images"][()], f["scalars"][()], f["target"][()]
        rng = np.random.default_rng(0)
        start, batches = time.perf_counter(), 0
        for _ in range(epochs):
            order = rng.permutation(len(target))
            for i in range(0, len(order) - batch + 1, batch):
                idx = order[i : i + batch]
                _ = (torch.from_numpy(images[idx]), torch.from_numpy(scalars[idx]), torch.from_numpy(target[idx]))
                batches += 1
        setup = 0.0
    else:
        t0 = time.perf_counter()
        dm = CloudDataModule(path, split={"kind": "flight"}, batch_size=batch, memory_budget_mb=budget_mb)
        dm.setup()
        setup = time.perf_counter() - t0
        loader = dm.train_dataloader()
        start, batches = time.perf_counter(), 0
        for _ in range(epochs):
            for _batch in loader:
                batches += 1
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batches_per_s": batches / elapsed, "setup_s": setup, "peak_rss_mb": peak_mb,
            "data_rss_mb": peak_mb - baseline_mb}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case
        print(json.dumps(run_case(args.case, args.path, args.budget, args.epochs, args.batch)))
        return

    path = Path(tempfile.mkdtemp()) / "bench.h5"
    write_file(path, args.samples)
    data_mb = args.samples * 3 * 32 * 32 * 4 / 2**20
    cases = [("in-memory reference", "reference", 0), ("datamodule (fits budget)", "module", 4 * data_mb),
             ("datamodule (lazy, file 3x budget)", "module", data_mb / 3)]  # fmt: skip
    results = {}
    for label, case, budget in cases:
        out = subprocess.run([sys.executable, __file__, "--case", case, "--path", str(path), "--budget", str(budget),
                              "--epochs", str(args.epochs), "--batch", str(args.batch)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        results[label] = (json.loads(out.stdout.strip().splitlines()[-1]), budget)
    ref = results["in-memory reference"][0]["batches_per_s"]
    print(f"file: {args.samples} samples of 3x32x32 float32 ({data_mb:.0f} MB), chunks of 64, gzip level 4; "
          f"batch {args.batch}, {args.epochs} epochs, 1 torch thread, num_workers 0")  # fmt: skip
    print(f"{'case':<36}{'batches/s':>11}{'vs memory':>11}{'setup s':>9}{'peak RSS MB':>13}{'above imports':>15}"
          f"{'budget MB':>11}")  # fmt: skip
    for label, (r, budget) in results.items():
        print(f"{label:<36}{r['batches_per_s']:>11.1f}{r['batches_per_s'] / ref:>11.2f}{r['setup_s']:>9.2f}"
              f"{r['peak_rss_mb']:>13.0f}{r['data_rss_mb']:>15.0f}{budget or float('nan'):>11.0f}")  # fmt: skip
    print("peak RSS includes the imports (torch ~220 MB, + Lightning ~335 MB); 'above imports' is what the data took")


if __name__ == "__main__":
    main()
