"""Data loading throughput: the HDF5 DataModule against indexing the same arrays in memory.

    python bench/bench_data.py                      # 12 000 samples; lazy: 768 MB file, 256 MB budget
    python bench/bench_data.py --samples 3000 --lazy-budget-mb 64 --repeats 1   # quicker

Files are chunked (64 samples) and gzip-compressed, as a user would write them. Cases, each
in its own process (so peak RSS is that case's alone), run `--repeats` times interleaved;
the table gives medians. Throughput is over epochs 2+ (the first is shown on its own):
  in-memory reference    numpy arrays in RAM, random batches by fancy indexing -> torch
  datamodule (fits)      CloudDataModule, file within data.memory_budget_mb (held in memory)
  lazy reference         the same numpy indexing on the big file's arrays
  datamodule (lazy)      CloudDataModule, file 3x data.memory_budget_mb: scratch copy (default)
  datamodule (lazy, scratch_dir=false)   reading the compressed chunks every epoch
Lazy throughput is compared with the lazy reference (same file size).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROW_MB = 3 * 32 * 32 * 4 / 2**20


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


def run_case(case: str, path: str, budget_mb: float, epochs: int, batch: int, scratch: bool) -> dict:
    import torch

    if case != "reference":
        from cloudml.data.datamodule import CloudDataModule  # imports Lightning: part of the baseline
    torch.set_num_threads(1)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if case == "reference":
        with h5py.File(path) as f:
            images, scalars, target = f["images"][()], f["scalars"][()], f["target"][()]
        rng = np.random.default_rng(0)
        setup = time.perf_counter() - t0
        epoch_times = []
        for _ in range(epochs):
            start = time.perf_counter()
            order = rng.permutation(len(target))
            for i in range(0, len(order) - batch + 1, batch):
                idx = order[i : i + batch]
                _ = (torch.from_numpy(images[idx]), torch.from_numpy(scalars[idx]), torch.from_numpy(target[idx]))
            epoch_times.append(time.perf_counter() - start)
        batches = len(target) // batch
    else:
        dm = CloudDataModule(path, split={"kind": "flight"}, batch_size=batch, memory_budget_mb=budget_mb,
                             scratch_dir=None if scratch else False)  # fmt: skip
        dm.setup()
        setup = time.perf_counter() - t0
        loader = dm.train_dataloader()
        epoch_times = []
        for epoch in range(epochs):
            loader.batch_sampler.set_epoch(epoch)  # as Lightning does: a new order every epoch
            start = time.perf_counter()
            batches = sum(1 for _batch in loader)
            epoch_times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batches_per_s": batches * (epochs - 1) / sum(epoch_times[1:]), "first_epoch": batches / epoch_times[0],
            "setup_s": setup, "peak_rss_mb": peak_mb, "data_rss_mb": peak_mb - baseline_mb}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12000, help="file of the in-memory comparison")
    parser.add_argument("--lazy-budget-mb", type=float, default=256, help="the lazy file is 3x this")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--no-scratch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case
        print(json.dumps(run_case(args.case, args.path, args.budget, args.epochs, args.batch, not args.no_scratch)))
        return

    tmp = Path(tempfile.mkdtemp())
    small, big = tmp / "fits.h5", tmp / "lazy.h5"
    lazy_samples = int(3 * args.lazy_budget_mb / ROW_MB)
    write_file(small, args.samples)
    write_file(big, lazy_samples)
    cases = {  # label: (case, file, budget MB, extra flags)
        "in-memory reference": ("reference", small, 0, []),
        "datamodule (fits budget)": ("module", small, 4 * args.samples * ROW_MB, []),
        "lazy reference (in memory)": ("reference", big, 0, []),
        "datamodule (lazy, file 3x budget)": ("module", big, args.lazy_budget_mb, []),
        "  the same, scratch_dir=false": ("module", big, args.lazy_budget_mb, ["--no-scratch"]),
    }
    runs = {label: [] for label in cases}
    for _ in range(args.repeats):
        for label, (case, path, budget, extra) in cases.items():
            out = subprocess.run([sys.executable, __file__, "--case", case, "--path", str(path), "--budget", str(budget),
                                  "--epochs", str(args.epochs), "--batch", str(args.batch), *extra],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
    median = {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in runs.items()}
    print(f"in-memory comparison: {args.samples} samples ({args.samples * ROW_MB:.0f} MB); lazy: {lazy_samples} samples "
          f"({lazy_samples * ROW_MB:.0f} MB) with a {args.lazy_budget_mb:.0f} MB budget; 3x32x32 float32, chunks of 64, "
          f"gzip 4; batch {args.batch}, {args.epochs} epochs, 1 torch thread, num_workers 0; median of {args.repeats}")  # fmt: skip
    print(f"{'case':<36}{'batches/s':>11}{'vs memory':>11}{'1st epoch':>11}{'setup s':>9}{'peak RSS MB':>13}"
          f"{'above imports':>15}{'budget MB':>11}")  # fmt: skip
    for label, r in median.items():
        case, path, budget, _ = cases[label]
        ref = median["in-memory reference" if path == small else "lazy reference (in memory)"]["batches_per_s"]
        print(f"{label:<36}{r['batches_per_s']:>11.1f}{r['batches_per_s'] / ref:>11.2f}{r['first_epoch']:>11.1f}"
              f"{r['setup_s']:>9.2f}{r['peak_rss_mb']:>13.0f}{r['data_rss_mb']:>15.0f}{budget or float('nan'):>11.0f}")  # fmt: skip
    print("batches/s: epochs 2+ (steady state); 1st epoch: the first, which pays first touches of the lazy cache;")
    print("peak RSS includes the imports (torch ~220 MB, + Lightning ~335 MB); 'above imports' is what the data took;")
    print("setup s: reading, checking and normalising the split (lazy: writing the scratch copy)")


if __name__ == "__main__":
    main()
