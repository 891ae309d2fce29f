"""The sweep through hydra/launcher=slurm_cpu on a real single-node SLURM
(scripts/local_slurm.sh, not a mock): same job directories as a local sweep, re-submitting
skips finished jobs, a preempted job is requeued and resumes from checkpoints/last.ckpt, and
SLURM (not Lightning) starts the DDP ranks of trainer=slurm_gpu_ddp (here on CPU, with gloo).

Needs root and apt-get (the script installs munge, slurm and mariadb on first use, ~25 s);
skipped, with the reason, only where the packages cannot be installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, TINY_RUN

SCRIPT = REPO / "scripts" / "local_slurm.sh"
CANNOT_INSTALL = 3  # the script's exit code when the packages are missing and cannot be installed


def _script(command: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory) -> dict:
    """Start the local SLURM (unless it already runs: then leave it running); the environment
    that points sbatch, sinfo and submitit at it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the local SLURM needs Linux (Debian)")
    env = dict(os.environ)
    already_running = _script("status", env).returncode == 0
    started = _script("start", env)
    if started.returncode == CANNOT_INSTALL:
        pytest.skip(f"local SLURM unavailable: {(started.stderr or started.stdout).strip()[-500:]}")
    assert started.returncode == 0, f"scripts/local_slurm.sh start failed:\n{started.stdout}\n{started.stderr[-3000:]}"
    print(started.stdout.strip())
    conf = [line.split("=", 1)[1] for line in started.stdout.splitlines() if line.startswith("export SLURM_CONF=")]
    env["SLURM_CONF"] = conf[0] if conf else _script("env", env).stdout.strip().split("=", 1)[1]
    env["CLOUDML_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield env
    if not already_running:
        stopped = _script("stop", env)
        assert stopped.returncode == 0, stopped.stderr


def sweep(env: dict, sweep_dir: Path, *overrides: str, log: Path | None = None):
    """`python train.py -m hydra/launcher=slurm_cpu ...` as a user types it (1 CPU per job, so
    the two jobs of a sweep run side by side on a 2-core machine); with `log`, started in the
    background with its output going there."""
    args = [sys.executable, "train.py", "-m", "hydra/launcher=slurm_cpu", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1", f"hydra.sweep.dir={sweep_dir}", *overrides]  # fmt: skip
    if log is not None:
        with open(log, "w") as out:
            return subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def job_dirs(sweep_dir: Path) -> dict:
    return {d.name: d for d in sweep_dir.iterdir() if d.is_dir() and not d.name.startswith(".")}


def slurm_jobs(sweep_dir: Path) -> set:
    """SLURM job ids (array tasks as `<array>_<task>`) that submitit used for this sweep."""
    return {p.parent.name for p in (sweep_dir / ".submitit").glob("*/*_submitted.pkl")}


def sacct(env: dict, job_ids, *, duplicates: bool = False) -> list:
    """One dict per allocation of the given jobs (with duplicates: every requeued run too), once
    SLURM has recorded their end (it trails the result file that submitit waits for by a moment)."""
    cmd = ["sacct", "-X", "-n", "-P", "-o", "JobID,State,Submit,Start,End,ElapsedRaw", "-j", ",".join(sorted(job_ids))]
    deadline = time.time() + 60
    while True:
        out = subprocess.run(cmd + (["-D"] if duplicates else []), env=env, capture_output=True, text=True, check=True)
        rows = [dict(zip(("id", "state", "submit", "start", "end", "elapsed"), line.split("|")))
                for line in out.stdout.splitlines() if line]  # fmt: skip
        if (rows and not {r["state"] for r in rows} & {"PENDING", "RUNNING", "COMPLETING"}) or time.time() > deadline:
            return rows
        time.sleep(0.2)


def job_log(sweep_dir: Path, job_id: str) -> str:
    return "".join(p.read_text() for p in sorted((sweep_dir / ".submitit" / job_id).glob("*_log.out")))


def test_sweep_on_slurm_lands_in_the_local_job_dirs_analyzes_and_resubmit_skips_finished_jobs(slurm_env, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = ("loss.variance_lambda=0,1", "name=slurm_test", *TINY_RUN)
    t0 = time.perf_counter()
    sweep(slurm_env, sweep_dir, *command)
    first_wall = time.perf_counter() - t0

    # Job directories are named from the overrides, exactly as the basic launcher names them.
    expected = {",".join(sorted([f"loss.variance_lambda={lam}", *TINY_RUN])): lam for lam in (0, 1)}
    dirs = job_dirs(sweep_dir)
    assert set(dirs) == set(expected)
    for name, lam in expected.items():
        run = dirs[name]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["variance_lambda"] == lam
        assert summary["epochs_completed"] == summary["epochs_planned"] == 2
        history = pd.read_csv(run / "history.csv")
        assert history["epoch"].tolist() == [0, 1]
        preds = np.load(run / "predictions.npz")
        assert preds["pred"].shape == preds["target"].shape and len(preds["pred"]) > 0
        assert (run / "checkpoints" / "last.ckpt").is_file()

    # The jobs really ran as SLURM jobs (an array of two), recorded by the accounting daemon.
    first_jobs = slurm_jobs(sweep_dir)
    records = sacct(slurm_env, first_jobs)
    assert len(first_jobs) == 2 and {r["state"] for r in records} == {"COMPLETED"}, records
    print(f"\n2-job sweep through SLURM: {first_wall:.1f} s wall; per job (sacct) "
          f"{', '.join(r['id'] + ' ' + r['elapsed'] + ' s' for r in records)}")  # fmt: skip

    # analyze.py reads the SLURM sweep like a local one (the .submitit/ folder beside the runs is no run).
    results = tmp_path / "results"
    analysis = subprocess.run([sys.executable, "analyze.py", f"sweep_dir={sweep_dir}", f"results_dir={results}",
                               f"selected_loss_config={tmp_path / 'selected.yaml'}"],
                              cwd=REPO, env=slurm_env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert analysis.returncode == 0, analysis.stderr[-3000:]
    rows = json.loads((results / "section2_summary.json").read_text())["rows"]
    assert sorted(r["variance_lambda"] for r in rows) == [0, 1]

    # Re-submitting the same command: both jobs start, find their finished runs and skip them.
    files = ("history.csv", "summary.json", "predictions.npz", "checkpoints/last.ckpt")
    before = {(d, f): (dirs[d] / f).read_bytes() for d in dirs for f in files}
    t0 = time.perf_counter()
    sweep(slurm_env, sweep_dir, *command)
    second_wall = time.perf_counter() - t0
    second_jobs = slurm_jobs(sweep_dir) - first_jobs
    assert len(second_jobs) == 2
    for job in second_jobs:
        assert "already finished, skipped" in job_log(sweep_dir, job)
    assert set(job_dirs(sweep_dir)) == set(expected)
    assert {(d, f): (dirs[d] / f).read_bytes() for d in dirs for f in files} == before
    print(f"re-submitted sweep (both skipped): {second_wall:.1f} s wall")


def test_preempted_job_is_requeued_and_resumes_from_last_checkpoint(slurm_env, tmp_path):
    sweep_dir = tmp_path / "sweep"
    epochs = 80  # long enough to interrupt it mid-way (~0.1 s per tiny epoch)
    proc = sweep(slurm_env, sweep_dir, "loss.variance_lambda=1", "name=slurm_requeue", *TINY_RUN,
                 f"trainer.max_epochs={epochs}", log=tmp_path / "sweep.log")  # fmt: skip
    try:
        deadline = time.time() + 90
        history = None
        while time.time() < deadline and proc.poll() is None:
            found = list(sweep_dir.glob("*/history.csv"))
            if found and len(found[0].read_text().splitlines()) > 3:  # header + 3 epochs: last.ckpt exists
                history = found[0]
                break
            time.sleep(0.1)
        assert history is not None, "the job never reached epoch 3"
        (job,) = slurm_jobs(sweep_dir)
        # What submitit's own test hook does for a preemption: the job's signal (USR2), not at the
        # time limit -> the plugin's checkpoint() re-pickles the same call and requeues the job.
        subprocess.run(["scancel", "--signal=USR2", job], env=slurm_env, check=True)
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()[-3000:]

    run = history.parent
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == epochs
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == list(range(epochs))  # each epoch once
    log = job_log(sweep_dir, job)
    assert "this job is preempted" in log and f"Requeued job {job}" in log
    assert ": new |" in log and ": resume |" in log  # the second run resumed from checkpoints/last.ckpt
    runs = sacct(slurm_env, {job}, duplicates=True)
    assert [r["state"] for r in runs] == ["REQUEUED", "COMPLETED"], runs


def test_slurm_starts_the_ddp_ranks_and_lightning_joins_them(slurm_env, tmp_path):
    """The GPU recipe's rank model on CPU: tasks_per_node=2 -> SLURM starts two ranks of the same
    job; Lightning's SLURM environment joins them into one DDP run (nothing re-runs sys.argv)."""
    sweep_dir = tmp_path / "sweep"
    sweep(slurm_env, sweep_dir, "hydra.launcher.tasks_per_node=2", "trainer=slurm_gpu_ddp", "trainer.accelerator=cpu",
          "trainer.precision=32-true", "loss.variance_lambda=0.5", "name=slurm_ddp", *TINY_RUN)  # fmt: skip
    (run,) = job_dirs(sweep_dir).values()
    (job,) = slurm_jobs(sweep_dir)
    assert len(list((sweep_dir / ".submitit" / job).glob("*_result.pkl"))) == 2  # one per SLURM task
    assert "Starting with 2 processes" in (run / "train.log").read_text()  # Lightning's INFO: the job's log file
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    preds, split = np.load(run / "predictions.npz"), np.load(run / "split.npz")
    assert np.array_equal(preds["index"], split["val_index"])  # every validation sample once, in order
    y, p = preds["target"], preds["pred"]
    assert summary["final"]["val_r2"] == pytest.approx(1 - np.mean((p - y) ** 2) / y.var(), rel=1e-3, abs=1e-4)
