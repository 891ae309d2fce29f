"""The full default Section 2 sweep + analyze.py, sequential (basic launcher) vs joblib,
timed end to end through the CLI as a user runs it, plus start-up times.

    python bench/bench_sweep.py                # 6 λ x 15 epochs, both launchers (~5 min on 2 cores)
    python bench/bench_sweep.py --epochs 3     # quicker

Targets (2 CPU cores): sweep + analyze <= 10 min; joblib >= 1.6x faster than sequential.
The sequential sweep already uses both cores inside each job (torch intra-op threads), so it
is also timed with one thread per job, which is what each joblib worker gets.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = "0,0.5,1,2,5,10"


def timed(args: list, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "CLOUDML_CACHE": str(tmp / "cache")}
    timed(["train.py", "--cfg", "job"], env)  # warm the file cache of the imports
    subprocess.run([sys.executable, "-c", "from cloudml.data.datamodule import CloudDataModule as D; D().setup()"],
                   cwd=REPO, env=env, check=True, capture_output=True)  # generate the built-in data once  # fmt: skip
    rows = [("python train.py --help", timed(["train.py", "--help"], env)),
            ("python analyze.py --help", timed(["analyze.py", "--help"], env))]
    sweeps = {}
    # basic: one job at a time, torch using both cores; basic-1thread: the same with one thread
    # per job (what each joblib worker gets); joblib: two jobs at once, one thread each.
    variants = {"basic": [], "basic-1thread": ["threads=1"], "joblib": ["hydra/launcher=joblib"]}
    for launcher, extra in variants.items():
        sweep = tmp / launcher
        t_sweep = timed(["train.py", "-m", f"loss.variance_lambda={LAMBDAS}", f"trainer.max_epochs={args.epochs}",
                         f"hydra.sweep.dir={sweep}", *extra], env)  # fmt: skip
        t_analyze = timed(["analyze.py", f"sweep_dir={sweep}", f"results_dir={tmp / (launcher + '_results')}",
                           f"selected_loss_config={tmp / 'selected.yaml'}"], env)  # fmt: skip
        sweeps[launcher] = t_sweep
        rows += [(f"sweep, {launcher} launcher (6 λ x {args.epochs} epochs)", t_sweep),
                 ("analyze.py on that sweep", t_analyze), (f"sweep + analyze, {launcher}", t_sweep + t_analyze)]
    print(f"{os.cpu_count()} CPU cores; built-in data generated beforehand; times in seconds")
    print(f"{'what':<48}{'seconds':>10}")
    for name, seconds in rows:
        print(f"{name:<48}{seconds:>10.1f}")
    print(f"{'joblib speed-up over sequential (2 threads/job)':<48}{sweeps['basic'] / sweeps['joblib']:>10.2f}x")
    print(f"{'joblib speed-up over sequential (1 thread/job)':<48}{sweeps['basic-1thread'] / sweeps['joblib']:>10.2f}x")


if __name__ == "__main__":
    main()
