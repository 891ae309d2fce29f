"""Data loading throughput: the HDF5 DataModule against indexing the same arrays in memory.

    python bench/bench_data.py                      # 12 000 samples; lazy: 768 MB file, 256 MB budget
    python bench/bench_data.py --samples 3000 --lazy-budget-mb 64 --pairs 3   # quicker
    python bench/bench_data.py --json               # the table's rows as a JSON list of dicts

Files are chunked (64 samples) and gzip-compressed, as a user would write them. Each case
runs in its own process:
  1. the DataModule is set up and runs `--epochs` training epochs, each followed by an
     untimed validation pass as in training; peak RSS is taken here (imports + DataModule);
  2. then the file's arrays are loaded whole (the reference: random batches by numpy fancy
     indexing -> torch) and reference and DataModule epochs alternate `--pairs` times.
This VM's speed drifts by 10-30 % within a minute, so the ratio is the median of the
per-pair ratios (range in brackets), and batches/s are medians over the paired epochs.
Cases: datamodule within data.memory_budget_mb (held in memory); a file 3x the budget (lazy,
scratch copy: the default); the same with data.scratch_dir=false (chunks decompressed every epoch).
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


def run_case(path: str, budget_mb: float, epochs: int, pairs: int, batch: int, scratch: bool) -> dict:
    import torch

    from cloudml.data.datamodule import CloudDataModule  # imports Lightning: part of the baseline

    torch.set_num_threads(1)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    dm = CloudDataModule(path, split={"kind": "flight"}, batch_size=batch, memory_budget_mb=budget_mb,
                         scratch_dir=None if scratch else False)  # fmt: skip
    dm.setup()
    setup = time.perf_counter() - t0
    loader, epoch = dm.train_dataloader(), 0

    def module_epoch() -> float:
        nonlocal epoch
        loader.batch_sampler.set_epoch(epoch)  # as Lightning does: a new order every epoch
        epoch += 1
        start = time.perf_counter()
        batches = sum(1 for _batch in loader)
        rate = batches / (time.perf_counter() - start)
        sum(1 for _batch in dm.val_dataloader())  # untimed, as in training: its cache counts in peak RSS
        return rate

    alone = [module_epoch() for _ in range(epochs)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with h5py.File(path) as f:  # the reference: the same arrays, held in memory
        images, scalars, target = f["images"][()], f["scalars"][()], f["target"][()]
    rng = np.random.default_rng(0)

    def reference_epoch() -> float:
        start = time.perf_counter()
        order = rng.permutation(len(target))
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i : i + batch]
            _ = (torch.from_numpy(images[idx]), torch.from_numpy(scalars[idx]), torch.from_numpy(target[idx]))
        return (len(target) // batch) / (time.perf_counter() - start)

    paired = [(reference_epoch(), module_epoch()) for _ in range(pairs)]
    ratios = [m / r for r, m in paired]
    return {"batches_per_s": statistics.median(m for _, m in paired),
            "reference_per_s": statistics.median(r for r, _ in paired),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "first_epoch_per_s": alone[0], "setup_s": setup, "peak_rss_mb": peak_mb, "data_rss_mb": peak_mb - baseline_mb}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12000, help="file of the in-memory comparison")
    parser.add_argument("--lazy-budget-mb", type=float, default=256, help="the lazy file is 3x this")
    parser.add_argument("--epochs", type=int, default=3, help="DataModule epochs before the paired ones")
    parser.add_argument("--pairs", type=int, default=7, help="alternating reference / DataModule epochs")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list of dicts instead of the table")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--no-scratch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case
        result = run_case(args.case, args.budget, args.epochs, args.pairs, args.batch, not args.no_scratch)
        print(json.dumps(result))
        return

    lazy_samples = int(3 * args.lazy_budget_mb / ROW_MB)
    header = (f"in-memory comparison: {args.samples} samples ({args.samples * ROW_MB:.0f} MB); lazy: {lazy_samples} samples "
              f"({lazy_samples * ROW_MB:.0f} MB) with a {args.lazy_budget_mb:.0f} MB budget; 3x32x32 float32, chunks of 64, "
              f"gzip 4; batch {args.batch}, 1 torch thread, num_workers 0; {args.pairs} paired epochs")  # fmt: skip
    table = not args.json  # rows are printed as they come; --json prints them all at the end instead
    if table:
        print(header)
        print(f"{'case':<36}{'batches/s':>11}{'reference':>11}{'ratio [range]':>20}{'1st epoch':>11}{'setup s':>9}"
              f"{'peak RSS MB':>13}{'above imports':>15}{'budget MB':>11}")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "fits.h5", Path(tmp) / "lazy.h5"
        write_file(small, args.samples)
        write_file(big, lazy_samples)
        cases = {  # label (indented: a variant of the case above): (file, budget MB, extra flags)
            "datamodule (fits budget)": (small, 4 * args.samples * ROW_MB, []),
            "datamodule (lazy, file 3x budget)": (big, args.lazy_budget_mb, []),
            "  the same, scratch_dir=false": (big, args.lazy_budget_mb, ["--no-scratch"]),
        }
        for label, (path, budget, extra) in cases.items():
            out = subprocess.run([sys.executable, __file__, "--case", str(path), "--budget", str(budget),
                                  "--epochs", str(args.epochs), "--pairs", str(args.pairs), "--batch", str(args.batch),
                                  *extra], capture_output=True, text=True, check=True)  # fmt: skip
            r = {"case": label.strip(), **json.loads(out.stdout.strip().splitlines()[-1]), "budget_mb": budget}
            rows.append(r)
            if table:
                ratio = f"{r['ratio']:.2f} [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]"
                print(f"{label:<36}{r['batches_per_s']:>11.1f}{r['reference_per_s']:>11.1f}{ratio:>20}"
                      f"{r['first_epoch_per_s']:>11.1f}{r['setup_s']:>9.2f}{r['peak_rss_mb']:>13.0f}{r['data_rss_mb']:>15.0f}"
                      f"{budget:>11.0f}", flush=True)  # fmt: skip
    if not table:
        print(json.dumps(rows, indent=1))
        return
    print("reference: the same file's arrays indexed in memory, in the same process; 1st epoch: the DataModule's")
    print("first (it pays the lazy cache's first touch); setup: reading, checking and normalising the split (lazy:")
    print("writing the scratch copy); peak RSS: imports (torch ~220 MB, + Lightning ~335 MB) + DataModule, before")
    print("the reference arrays are loaded; 'above imports' is what the data took")


if __name__ == "__main__":
    main()
