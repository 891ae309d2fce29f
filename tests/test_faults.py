"""Faults a long sweep on a shared machine meets, through the real CLI: kill -9 of a sweep and of
analyze.py, checkpoints that are not checkpoints, a λ whose loss becomes non-finite.

A half-written or hand-edited summary.json (analyze reports the run as broken and goes on) is
covered in test_analyze.py: test_cli_writes_table2_selection_and_reports_broken_runs and
test_run_without_summary_counts_as_running_and_hand_edited_one_is_broken.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fakes import fake_predictions, write_run
from conftest import jobs_by_lambda, REPO, TINY_RUN, run_cli


def tiny(**changes) -> list:
    """TINY_RUN with some values replaced (Hydra refuses a key given twice in a sweep)."""
    out = [o for o in TINY_RUN if o.split("=")[0] not in changes]
    return out + [f"{k}={v}" for k, v in changes.items()]


def tree_bytes(root) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def summary_of(job) -> dict:
    return json.loads((job / "summary.json").read_text())


def analyze(sweep_dir, results, *, check=True):
    result = run_cli(str(REPO / "analyze.py"), f"sweep_dir={sweep_dir}", f"results_dir={results}",
                     f"selected_loss_config={results / 'selected.yaml'}")  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


# -- (a) kill -9 a sweep mid-job, run the same command again ------------------------------------
def test_killed_sweep_finishes_on_rerun_without_touching_finished_jobs(tmp_path, cli_env):
    sweep_dir, epochs = tmp_path / "sweep", 5
    command = ["train.py", "-m", "loss.variance_lambda=0,1,2",
               *tiny(**{"data.synthetic.samples_per_flight": 120, "trainer.max_epochs": epochs}),
               f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, *command], cwd=REPO, env={**os.environ, **cli_env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline and not list(sweep_dir.glob("*variance_lambda=1,*/checkpoints/last.ckpt")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # the second job has a checkpoint: it is mid-training
    proc.wait()

    jobs = jobs_by_lambda(sweep_dir)
    assert summary_of(jobs[0.0])["status"] == "completed"
    killed = summary_of(jobs[1.0])
    assert killed["status"] == "running" and killed["epochs_completed"] < epochs, "the job finished before the kill"
    assert 2.0 not in jobs or not (jobs[2.0] / "summary.json").exists()
    finished_before = tree_bytes(jobs[0.0])
    history_before = (jobs[1.0] / "history.csv").read_text().splitlines()

    again = run_cli(*command, env=cli_env)
    assert again.returncode == 0, again.stderr[-3000:]
    jobs = jobs_by_lambda(sweep_dir)
    assert f"{jobs[0.0]}: already finished, skipped" in again.stdout
    assert f"{jobs[1.0]}: resume |" in again.stdout and f"{jobs[2.0]}: new |" in again.stdout
    assert tree_bytes(jobs[0.0]) == finished_before  # every file, Hydra's .hydra/ record included
    history = pd.read_csv(jobs[1.0] / "history.csv")
    assert history["epoch"].tolist() == list(range(epochs))  # each epoch once, as many as planned
    assert (jobs[1.0] / "history.csv").read_text().splitlines()[: len(history_before) - 1] == history_before[:-1]
    for lam in (1.0, 2.0):
        summary = summary_of(jobs[lam])
        assert summary["status"] == "completed" and summary["epochs_completed"] == summary["epochs_planned"] == epochs

    analyze(sweep_dir, tmp_path / "results")
    table = pd.read_csv(tmp_path / "results" / "section2_table2.csv", dtype=str).set_index("variance_lambda")
    for lam in ("0.0", "1.0", "2.0"):
        assert float(table.loc[lam, "final_r2"]) == pytest.approx(summary_of(jobs[float(lam)])["final"]["val_r2"])


# -- (b) kill -9 analyze.py while it writes ----------------------------------------------------
@pytest.fixture
def slow_sweep(tmp_path):
    """12 runs of 1 000 validation samples: analyze.py writes its files over ~1.5 s."""
    target = np.linspace(0.2, 1.8, 1000) ** 1.3
    rng = np.random.default_rng(0)
    for lam in (0, 0.5, 1, 2, 5, 10):
        for seed in range(2):
            pred = fake_predictions(target, 0.6 + 0.05 * seed, 0.3 + 0.1 * lam, rng)
            write_run(tmp_path / "sweep", lam, seed, target=target, pred=pred,
                      train_index=np.arange(1000), val_index=np.arange(1000, 2000))  # fmt: skip
    return tmp_path / "sweep"


def visible_files(results) -> dict:
    return {p.name: p.read_bytes() for p in results.iterdir() if not p.name.startswith(".")}


def test_analyze_killed_mid_write_never_leaves_a_half_written_result(tmp_path, slow_sweep):
    results = tmp_path / "results"
    analyze(slow_sweep, results)
    good = visible_files(results)  # the same sweep gives byte-identical results
    assert len(good) == 8 and json.loads(good["section2_summary.json"])

    command = [sys.executable, str(REPO / "analyze.py"), f"sweep_dir={slow_sweep}", f"results_dir={results}",
               f"selected_loss_config={results / 'selected.yaml'}"]  # fmt: skip
    rng = np.random.default_rng(0)
    # Kill as the n-th temporary file appears (certainly mid-write), then at random moments.
    for nth_temp, delay in [(1, None), (2, None), (4, None), *((None, d) for d in rng.uniform(0.4, 2.0, 3))]:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started, temps = time.time(), set()
        while proc.poll() is None:
            temps |= {p.name for p in results.glob(".*.tmp")}
            if (nth_temp and len(temps) >= nth_temp) or (delay and time.time() - started >= delay):
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert visible_files(results) == good, (nth_temp, delay)  # every result is the old or a whole new one

    leftovers = [p.name for p in results.iterdir() if p.name not in good]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers)  # hidden, never a result name
    analyze(slow_sweep, results)  # the next run is not tripped by them
    assert visible_files(results) == good


# -- (c) a checkpoint that is not a checkpoint ---------------------------------------------------
class Payload:
    """Unpickling this runs open(marker, "w"): what an arbitrary pickled object can do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run directory as kill -9 leaves it: checkpoints/last.ckpt, summary.json `running`."""
    root = tmp_path_factory.mktemp("interrupted")
    env = {"CLOUDML_CACHE": str(root / "cache")}
    result = run_cli("train.py", *TINY_RUN, f"hydra.run.dir={root / 'run'}", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(root / "run")
    (root / "run" / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    return root / "run", env


CHECKPOINTS = {  # case -> (write it, what the refusal says)
    "random_bytes": (lambda path, marker: path.write_bytes(np.random.default_rng(0).bytes(4096)), ""),
    "torch_save_of_an_object": (lambda path, marker: torch.save({"state_dict": {}, "x": Payload(marker)}, path),
                                "refused by weights_only loading: Unsupported global: GLOBAL io.open"),
}  # fmt: skip


@pytest.mark.parametrize("case", CHECKPOINTS)
def test_checkpoint_that_is_not_a_checkpoint_is_refused_in_one_line(tmp_path, interrupted_run, case):
    source, env = interrupted_run
    run_dir, marker = tmp_path / "run", tmp_path / "payload_ran"
    shutil.copytree(source, run_dir)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    write, reason = CHECKPOINTS[case]
    write(ckpt, marker)
    before = tree_bytes(run_dir)

    result = run_cli("train.py", *TINY_RUN, f"hydra.run.dir={run_dir}", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"train.py: error: {ckpt}: not a loadable checkpoint ({reason}")
    assert lines[0].endswith("); delete it to restart this job from scratch")
    assert not marker.exists()  # loading is weights_only: the pickled object never ran
    after = tree_bytes(run_dir)
    summary_before = json.loads(before.pop(Path("summary.json")))
    summary_after = json.loads(after.pop(Path("summary.json")))
    assert after == before  # the checkpoint and every other file untouched
    # The summary said `running` (as a kill -9 left it); the job is now marked failed with the reason, its numbers kept.
    assert summary_after == {**summary_before, "status": "failed", "error": lines[0].removeprefix("train.py: error: ")}


# -- (e) a λ whose loss becomes non-finite --------------------------------------------------------
def test_diverging_lambda_stops_as_diverged_and_the_sweep_goes_on(tmp_path, cli_env):
    """λ = 1e39 overflows float32: the loss is infinite at the first step. It runs first; λ = 0 after it."""
    sweep_dir = tmp_path / "sweep"
    result = run_cli("train.py", "-m", "loss.variance_lambda=1e39,0", *tiny(**{"trainer.max_epochs": 3}),
                     f"hydra.sweep.dir={sweep_dir}", env=cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = jobs_by_lambda(sweep_dir)
    diverged, other = summary_of(jobs[1e39]), summary_of(jobs[0.0])
    epoch = diverged["diverged_epoch"]
    assert diverged["status"] == "diverged" and diverged["stability"] == "diverged" and epoch is not None
    history = pd.read_csv(jobs[1e39] / "history.csv")
    assert history["epoch"].iloc[-1] == epoch and np.isnan(history["train_loss"].iloc[-1])
    assert other["status"] == "completed" and other["epochs_completed"] == 3

    analyze(sweep_dir, tmp_path / "results")
    table = pd.read_csv(tmp_path / "results" / "section2_table2.csv", dtype=str).set_index("variance_lambda")
    assert table.loc["1e+39", "stability"] == f"Unstable (diverged at epoch {epoch})"
    assert table.loc["1e+39", "final_r2"] == "[diverged]" and table.loc["0.0", "stability"] != "[pending]"
    assert f"Unstable (diverged at epoch {epoch})" in (tmp_path / "results" / "section2_table2.txt").read_text()
