"""Ctrl-C and SIGTERM to real train.py processes: the summary says `interrupted` (signal, epoch),
the process exits 130 / 143, a sweep stops, analyze.py shows the run as running and then as
interrupted, and the same command resumes to the planned epochs with a continuous history.

Ctrl-C goes through a real terminal (tmux send-keys C-c) where tmux is installed: a background job of
a non-interactive shell ignores SIGINT, so `kill -INT` on a `&` job tests nothing. Without tmux the
process is started in its own session with SIGINT at its default and the group gets SIGINT (killpg).
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys

import torch

from conftest import REPO, jobs_by_lambda, run_cli
from processes import SLOW_TINY, epochs_in_history, lock_files, output, start, summary_of, table_status, wait_for


def test_sigterm_marks_the_run_interrupted_exits_143_and_the_same_command_resumes_it(tmp_path, cli_env):
    run_dir, epochs = tmp_path / "run", 12
    command = ["train.py", *SLOW_TINY, f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}"]
    proc = start(command, cli_env, tmp_path / "term")
    wait_for(lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), proc)
    assert table_status(run_dir, tmp_path / "live")["0.0"] == "[running]"
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)  # what SLURM's time limit, scancel and `docker stop` send

    assert proc.wait(timeout=120) == 143
    stderr = output(tmp_path / "term")[1]
    assert [line for line in stderr.splitlines() if line.startswith("train.py:")] == [
        f"train.py: stopped by SIGTERM: {run_dir} is marked interrupted; the same command resumes it"]
    assert "Traceback" not in stderr
    summary, history = summary_of(run_dir), epochs_in_history(run_dir)
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == "SIGTERM"
    assert 0 < summary["epochs_completed"] == summary["interrupted_epoch"] == len(history) < epochs
    assert history == list(range(len(history))) and lock_files(run_dir) == []
    assert table_status(run_dir, tmp_path / "stopped")["0.0"] == "[interrupted]"
    resumed_from = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] + 1
    kept_rows = (run_dir / "history.csv").read_text().splitlines()[: 1 + resumed_from]

    again = run_cli(*command, env=cli_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{run_dir}: resume |" in again.stdout
    assert epochs_in_history(run_dir) == list(range(epochs))  # continuous: each epoch once, as planned
    assert (run_dir / "history.csv").read_text().splitlines()[: 1 + resumed_from] == kept_rows
    summary = summary_of(run_dir)
    assert summary["status"] == "completed" and summary["epochs_completed"] == epochs
    assert "interrupted_by" not in summary and "interrupted_epoch" not in summary


def ctrl_c(args: list, env: dict, tmp_path, until) -> tuple:
    """Run `python args`, press Ctrl-C once `until()` holds; (exit code, stdout, stderr)."""
    out, err, code = tmp_path / "ctrl_c.out", tmp_path / "ctrl_c.err", tmp_path / "ctrl_c.code"
    if shutil.which("tmux"):
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        script = tmp_path / "ctrl_c.sh"
        script.write_text(f"cd {shlex.quote(str(REPO))}\n{exports}{shlex.join([sys.executable, *args])} > {out} 2> {err}\n"
                          f"echo $? > {code}\n")  # fmt: skip
        tmux = ["tmux", "-L", f"cloudml-test-{os.getpid()}"]  # a tmux server of the test's own
        subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "40", f"exec bash {script}"], check=True)
        try:
            wait_for(until)
            subprocess.run([*tmux, "send-keys", "C-c"], check=True)  # the terminal sends SIGINT to its foreground job
            wait_for(lambda: code.exists() and code.read_text().strip() != "", timeout=120)
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True)
        return int(code.read_text()), out.read_text(), err.read_text()
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env={**os.environ, **env}, stdout=open(out, "w"),
                            stderr=open(err, "w"), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    wait_for(until, proc)
    os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(timeout=120), out.read_text(), err.read_text()


def test_ctrl_c_stops_the_sweep_with_exit_130_and_the_same_command_finishes_it(tmp_path, cli_env):
    sweep_dir, epochs = tmp_path / "sweep", 6
    command = ["train.py", "-m", "loss.variance_lambda=0,1", *SLOW_TINY, f"trainer.max_epochs={epochs}",
               f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    rc, stdout, stderr = ctrl_c(command, {**cli_env, "PATH": os.environ["PATH"]}, tmp_path,
                                until=lambda: any(sweep_dir.glob("*/checkpoints/last.ckpt")))  # fmt: skip
    assert rc == 130, stderr[-3000:]
    jobs = jobs_by_lambda(sweep_dir)
    assert list(jobs) == [0.0]  # the sweep stopped: the second job never started
    assert [line for line in stderr.splitlines() if line.startswith("train.py:")] == [
        f"train.py: stopped by SIGINT: {jobs[0.0]} is marked interrupted; the same command resumes it"]
    assert "Traceback" not in stderr
    summary = summary_of(jobs[0.0])
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == "SIGINT"
    assert summary["interrupted_epoch"] == summary["epochs_completed"] == len(epochs_in_history(jobs[0.0])) < epochs

    again = run_cli(*command, env=cli_env)
    assert again.returncode == 0, again.stderr[-3000:]
    jobs = jobs_by_lambda(sweep_dir)
    assert f"{jobs[0.0]}: resume |" in again.stdout and f"{jobs[1.0]}: new |" in again.stdout
    for job in jobs.values():
        assert summary_of(job)["status"] == "completed" and epochs_in_history(job) == list(range(epochs))
