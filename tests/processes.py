"""Real train.py processes for the fault tests: start one in the background, wait until its run
reaches a point (a checkpoint, a lock), read back what it said."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, TINY_RUN, run_cli

# Tiny runs long enough to be caught mid-training (360 training samples, ~0.3-1 s an epoch here).
SLOW_TINY = [o for o in TINY_RUN if not o.startswith(("data.synthetic.samples_per_flight=", "trainer.max_epochs="))]
SLOW_TINY.append("data.synthetic.samples_per_flight=120")


def start(args: list, env: dict, log: Path, **popen) -> subprocess.Popen:
    """`python <args>` in the background, stdout and stderr into `log`.out / `log`.err."""
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env={**os.environ, **env},
                            stdout=open(f"{log}.out", "w"), stderr=open(f"{log}.err", "w"), **popen)  # fmt: skip


def output(log: Path) -> tuple:
    """(stdout, stderr) of a process started with `start`."""
    return Path(f"{log}.out").read_text(), Path(f"{log}.err").read_text()


def wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 240.0) -> None:
    """Poll `condition()` until it holds; fail if `proc` ends first or time runs out."""
    deadline = time.time() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"the process ended (rc {proc.returncode}) before the condition held"
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.02)


def summary_of(job: Path) -> dict:
    return json.loads((job / "summary.json").read_text())


def epochs_in_history(job: Path) -> list:
    lines = (job / "history.csv").read_text().splitlines()[1:]
    return [int(float(line.split(",")[0])) for line in lines]


def lock_files(job: Path) -> list:
    """The job lock and its claim files (none once every process let go of the job)."""
    return sorted(p.name for p in job.glob(".lock*"))


def table_status(sweep_dir: Path, results: Path) -> dict:
    """λ -> Table 2's final_r2 cell ('[running]', '[interrupted]' or a number), from analyze.py."""
    import pandas as pd

    result = run_cli("analyze.py", f"sweep_dir={sweep_dir}", f"results_dir={results}",
                     f"selected_loss_config={results / 'selected.yaml'}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(results / "section2_table2.csv", dtype=str)
    return dict(zip(table["variance_lambda"], table["final_r2"]))
