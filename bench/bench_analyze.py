"""Time ``python analyze.py`` on fake sweeps of N runs (targets: ≤ 5 s for 6, ≤ 60 s for 1000).

    python bench/bench_analyze.py            # N = 6 and 1000
    python bench/bench_analyze.py --runs 6 100 1000

Each sweep holds the program's six λ values, with N/6 seeds each, on one shared HDF5 file
(so the baselines are computed once per analysis, as for a real sweep). Timed end to end
through a subprocess, like a user would run it, with a fresh results directory.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fake run directories of the analysis tests

from fakes import fake_predictions, write_h5, write_run  # noqa: E402

LAMBDAS = [0, 0.5, 1, 2, 5, 10]


def make_sweep(root: Path, n_runs: int, data: Path, n_val: int = 200) -> Path:
    """``n_runs`` completed runs spread over the six λ values (seed = run // 6)."""
    rng = np.random.default_rng(n_runs)
    target = rng.gamma(2.0, 0.3, n_val) + 0.1
    train, val = np.arange(400), np.arange(400, 400 + n_val)
    sweep = root / f"sweep_{n_runs}"
    for i in range(n_runs):
        lam, seed = LAMBDAS[i % 6], i // 6
        ratio = min(1.2, 0.1 + 0.2 * lam) * rng.uniform(0.9, 1.1)
        pred = fake_predictions(target, rng.uniform(0.5, 0.7), ratio, rng)
        write_run(sweep, lam, seed, target=target, pred=pred, train_index=train, val_index=val,
                  data_path=data, oracle_r2=0.8)
    return sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[6, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        images = rng.random((600, 3, 32, 32), dtype=np.float32)
        data = write_h5(root / "data.h5", images, 0.2 + 1.5 * images.std(axis=(1, 2, 3)),
                        scalars=rng.random((600, 2)))
        print(f"{'runs':>6} {'seconds':>8}")
        for n in args.runs:
            sweep = make_sweep(root, n, data)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(REPO / "analyze.py"), f"sweep_dir={sweep}",
                                   f"results_dir={root / f'results_{n}'}",
                                   f"selected_loss_config={root / f'selected_{n}.yaml'}"],
                                  cwd=REPO, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                sys.exit(f"analyze.py failed on {n} runs:\n{proc.stderr}")
            print(f"{n:>6} {seconds:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
