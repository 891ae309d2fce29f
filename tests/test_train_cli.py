"""train.py through the real CLI on tiny built-in data: every run file, lr per step,
skip-finished, resume-after-kill, divergence, determinism."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from cloudml.rundir import HISTORY_COLUMNS
from conftest import REPO, TINY_RUN, run_cli

SUMMARY_KEYS = {"status", "variance_lambda", "seed", "model", "epochs_completed", "epochs_planned", "final",
                "avg_base_loss_last5", "avg_var_loss_last5", "stability", "stability_reason", "collapsed", "wall_time_s"}  # fmt: skip


def train(run_dir, cli_env, *overrides, epochs=2):
    result = run_cli("train.py", *TINY_RUN, f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}", *overrides, env=cli_env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_training_run_writes_every_spec_file(tmp_path, cli_env):
    run = tmp_path / "run"
    train(run, cli_env, "loss.variance_lambda=0.5", epochs=3)
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "history.csv", "predictions.npz", "summary.json",
                 "checkpoints/last.ckpt", "normalization.json", "data.json", "split.npz"):  # fmt: skip
        assert (run / name).is_file(), name
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns[: len(HISTORY_COLUMNS)]) == HISTORY_COLUMNS and len(history) == 3
    spikes = ["base_loss_spike", "grad_norm_spike"]  # empty until 10 steps are behind, as in epoch 0 here
    assert np.isfinite(history.drop(columns=spikes).to_numpy()).all()
    assert history[spikes].iloc[0].isna().all() and np.isfinite(history[spikes].iloc[-1]).all()
    assert history["lr"].iloc[0] != history["lr"].iloc[-1]  # the schedule stepped within the run

    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["status"] == "completed" and summary["variance_lambda"] == 0.5 and summary["model"] == "transformer"
    assert summary["epochs_completed"] == summary["epochs_planned"] == 3
    assert summary["final"]["val_r2"] == pytest.approx(history["val_r2"].iloc[-1])

    preds = np.load(run / "predictions.npz", allow_pickle=False)
    split = np.load(run / "split.npz", allow_pickle=False)
    data = json.loads((run / "data.json").read_text())
    assert np.array_equal(preds["index"], split["val_index"])  # validation order, every sample once
    with h5py.File(data["path"]) as f:
        assert np.allclose(preds["target"], f["target"][()][preds["index"]], atol=1e-5)  # km, same order
        assert np.array_equal(preds["flight"], f["flight"][()][preds["index"]])
    y, p = preds["target"], preds["pred"]
    assert summary["final"]["val_variance_ratio"] == pytest.approx(p.var() / y.var(), rel=1e-4)
    assert summary["final"]["val_r2"] == pytest.approx(1 - np.mean((p - y) ** 2) / y.var(), rel=1e-3, abs=1e-4)


def test_lr_warms_up_and_decays_per_step_not_per_epoch(tmp_path, cli_env):
    run = tmp_path / "run"
    train(run, cli_env, epochs=4)
    lr = pd.read_csv(run / "history.csv")["lr"].to_numpy()
    peak = 2e-3
    assert lr.max() > 0.5 * peak  # left the warm-up start (peak / 25) well within the run
    assert lr[-1] < 0.05 * peak  # and annealed by the end
    assert len(set(lr)) == 4


def test_rerun_skips_a_finished_job_and_leaves_its_files_untouched(tmp_path, cli_env):
    run = tmp_path / "run"
    train(run, cli_env)
    before = {p.name: p.read_bytes() for p in (run / "history.csv", run / "summary.json", run / "predictions.npz")}
    again = train(run, cli_env)
    assert "already finished, skipped" in again.stdout
    assert {p: (run / p).read_bytes() for p in before} == before


def test_same_seed_and_config_reproduce_history_exactly(tmp_path, cli_env):
    a, b = tmp_path / "a", tmp_path / "b"
    train(a, cli_env, "seed=7")
    train(b, cli_env, "seed=7")
    timings = ["epoch_seconds"]  # wall-clock, the one column that may differ
    pd.testing.assert_frame_equal(pd.read_csv(a / "history.csv").drop(columns=timings),
                                  pd.read_csv(b / "history.csv").drop(columns=timings), check_exact=True)  # fmt: skip


def test_a_diverging_run_stops_cleanly_as_diverged(tmp_path, cli_env):
    run = tmp_path / "run"
    result = train(run, cli_env, "optimizer.lr=1e12", epochs=3)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["stability"] == "diverged"
    assert summary["diverged_epoch"] is not None and summary["epochs_completed"] <= summary["diverged_epoch"] + 1
    assert result.returncode == 0


def test_killed_run_resumes_from_last_checkpoint_to_the_planned_epochs(tmp_path, cli_env):
    run = tmp_path / "run"
    args = [sys.executable, "train.py", *TINY_RUN, "data.synthetic.samples_per_flight=120", "trainer.max_epochs=6",
            f"hydra.run.dir={run}"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=REPO, env={**os.environ, **cli_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.ckpt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(pd.read_csv(run / "history.csv")) if (run / "history.csv").exists() else 0
    assert killed_at < 6, "the run finished before it could be killed"
    result = run_cli(*args[1:], env=cli_env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resume" in result.stdout
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == list(range(6))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 6
