"""One live owner per job directory, through real train.py processes: two launches of one sweep
share its jobs (each trained once), a lock whose owner is gone is taken over (a killed process; a
heartbeat that stopped, as when a node is lost or a process hangs), a live one is respected, and a
process that lost its lock stops without writing."""

import os
import signal
import time

import numpy as np
import pytest

from cloudml.rundir.lock import HOST, SLOP_S, read_holder
from conftest import jobs_by_lambda, run_cli
from processes import SLOW_TINY, epochs_in_history, lock_files, output, start, summary_of, table_status, wait_for


def test_two_launches_of_one_sweep_train_every_job_exactly_once(tmp_path, cli_env):
    sweep_dir, epochs, lambdas = tmp_path / "sweep", 5, (0.0, 1.0, 2.0, 5.0)
    command = ["train.py", "-m", "loss.variance_lambda=0,1,2,5", *SLOW_TINY, f"trainer.max_epochs={epochs}",
               f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    first = start(command, cli_env, tmp_path / "first")
    wait_for(lambda: any((job / ".lock").exists() for job in sweep_dir.glob("*variance_lambda=0,*")), first)
    second = start(command, cli_env, tmp_path / "second")  # the same command in another terminal
    assert first.wait(timeout=600) == 0 and second.wait(timeout=600) == 0
    out = {name: output(tmp_path / name) for name in ("first", "second")}
    pids = {"first": first.pid, "second": second.pid}

    jobs = jobs_by_lambda(sweep_dir)
    assert sorted(jobs) == list(lambdas)
    trained_by = {}
    for lam, job in jobs.items():
        trainers = [name for name, (stdout, _) in out.items() if f"{job}: new |" in stdout]
        assert len(trainers) == 1, (lam, trainers)  # trained exactly once
        trained_by[lam] = trainers[0]
        other = "second" if trainers[0] == "first" else "first"
        held = f"{job}: held by another process (host {HOST}, pid {pids[trainers[0]]}), skipped"
        finished = f"{job}: already finished, skipped"
        assert held in out[other][0] or finished in out[other][0], (lam, out[other][0][-2000:])
        # Every file of the job is from that one training.
        summary = summary_of(job)
        assert summary["status"] == "completed" and summary["epochs_completed"] == epochs
        assert epochs_in_history(job) == list(range(epochs))
        preds = np.load(job / "predictions.npz")
        y, p = preds["target"], preds["pred"]
        assert summary["final"]["val_r2"] == pytest.approx(1 - np.mean((p - y) ** 2) / y.var(), rel=1e-3, abs=1e-4)
        last_row = (job / "history.csv").read_text().splitlines()[-1].split(",")
        header = (job / "history.csv").read_text().splitlines()[0].split(",")
        assert float(last_row[header.index("val_r2")]) == pytest.approx(summary["final"]["val_r2"])
        assert lock_files(job) == []  # released by its owner
    assert set(trained_by.values()) == {"first", "second"}  # the launches shared the sweep
    assert sum(o[0].count("held by another process") for o in out.values()) >= 1
    for stdout, stderr in out.values():
        assert "Traceback" not in stderr and "train.py: error" not in stderr, stderr[-2000:]


def test_lock_of_a_killed_run_is_taken_over_and_the_run_resumes(tmp_path, cli_env):
    run_dir, epochs = tmp_path / "run", 6
    command = ["train.py", *SLOW_TINY, f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}"]
    proc = start(command, cli_env, tmp_path / "killed")
    wait_for(lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    holder = read_holder(run_dir)
    assert (holder.host, holder.pid) == (HOST, proc.pid) and holder.gone() == "the process is gone"
    assert summary_of(run_dir)["status"] == "running"  # as kill -9 left it; analyze.py knows better
    assert table_status(run_dir, tmp_path / "results")["0.0"] == "[interrupted]"

    result = run_cli(*command, env=cli_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"[cloudml] {run_dir}: took over the lock of host {HOST}, pid {proc.pid} (the process is gone)" in result.stdout
    assert f"{run_dir}: resume |" in result.stdout
    assert epochs_in_history(run_dir) == list(range(epochs)) and summary_of(run_dir)["status"] == "completed"
    assert lock_files(run_dir) == []  # the killed owner's claim file went with its lock


def plant_lock(job, host: str, pid: int, expires: float) -> None:
    """The lock a process on another machine leaves: flufl.lock's claim file hard-linked to `.lock`."""
    job.mkdir(parents=True, exist_ok=True)
    claim = job / f".lock|{host}|{pid}|12345"
    claim.write_text(str(claim))
    os.link(claim, job / ".lock")
    os.utime(claim, (expires, expires))


def test_lock_of_another_host_is_respected_while_its_heartbeat_runs_and_taken_over_after(tmp_path, cli_env):
    run_dir = tmp_path / "run"
    command = ["train.py", *SLOW_TINY, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}"]
    plant_lock(run_dir, "node-7", 4242, time.time() + 60)  # a live owner elsewhere: its heartbeat is current

    held = run_cli(*command, env=cli_env)
    assert held.returncode == 0, held.stderr[-3000:]  # a held job is skipped, not an error
    assert f"[cloudml] {run_dir}: held by another process (host node-7, pid 4242), skipped" in held.stdout
    assert not any((run_dir / name).exists() for name in ("summary.json", "history.csv", "identity.json", "checkpoints"))
    assert read_holder(run_dir).pid == 4242

    stopped = time.time() - SLOP_S - 20  # the node was lost: its heartbeat ran out 30 s ago
    os.utime(run_dir / ".lock", (stopped, stopped))
    taken = run_cli(*command, env=cli_env)
    assert taken.returncode == 0, taken.stderr[-3000:]
    line = next(ln for ln in taken.stdout.splitlines() if "took over the lock" in ln)
    assert line.startswith(f"[cloudml] {run_dir}: took over the lock of host node-7, pid 4242 (its heartbeat stopped ")
    assert 29 <= int(line.split("stopped ")[1].split(" s ago")[0]) <= 60
    assert summary_of(run_dir)["status"] == "completed" and lock_files(run_dir) == []


def test_a_process_whose_heartbeat_stopped_loses_the_job_and_writes_nothing_more(tmp_path, cli_env):
    """SIGSTOP freezes the owner (as a hung node would); its lock runs out and a second launch takes
    the job over. Woken up, the first process stops at its next epoch end without writing."""
    run_dir, epochs = tmp_path / "run", 8
    command = ["train.py", *SLOW_TINY, f"trainer.max_epochs={epochs}", "job_lock.lifetime_s=1", f"hydra.run.dir={run_dir}"]
    frozen = start(command, cli_env, tmp_path / "frozen")
    wait_for(lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), frozen)
    frozen.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: time.time() > read_holder(run_dir).expires + SLOP_S + 1, timeout=60)
        taker = start(command, cli_env, tmp_path / "taker")
        wait_for(lambda: read_holder(run_dir) is not None and read_holder(run_dir).pid == taker.pid, taker)
    finally:
        frozen.send_signal(signal.SIGCONT)  # woken while the other process trains the job
    assert frozen.wait(timeout=120) == 2 and taker.wait(timeout=300) == 0, output(tmp_path / "taker")[1][-3000:]
    taken = output(tmp_path / "taker")[0]
    assert f"{run_dir}: took over the lock of host {HOST}, pid {frozen.pid} (its heartbeat stopped " in taken
    assert f"{run_dir}: resume |" in taken
    stderr = output(tmp_path / "frozen")[1]
    errors = [line for line in stderr.splitlines() if line.startswith(("train.py:", "[cloudml]"))]
    assert errors == [f"train.py: error: {run_dir}: its lock was taken over by host {HOST}, pid {taker.pid} "
                      "while this process's heartbeat was overdue; stopped without writing"], stderr[-3000:]  # fmt: skip
    summary = summary_of(run_dir)
    assert summary["status"] == "completed" and summary["epochs_completed"] == epochs
    assert epochs_in_history(run_dir) == list(range(epochs))  # the woken process added no row
    assert "Traceback" not in stderr and lock_files(run_dir) == []
