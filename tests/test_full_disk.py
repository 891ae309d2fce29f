"""A file that does not fit: one line naming it with the space it needed, no partial file, the
previous version intact, the job marked `failed`, and a re-run with space resuming from the
intact checkpoint; the same for the other run files and for analyze.py's results.

Where the test may mount one (root), the disk is a real 2 MB tmpfs that the test fills (ENOSPC, the
error a full disk gives). Elsewhere the process gets a file-size limit, RLIMIT_FSIZE (EFBIG), which
fails the same write without root; it runs everywhere, so both paths are tested where root is.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from cloudml.atomic import NoSpaceError, write_json, write_npz, write_text
from conftest import REPO, run_cli
from fakes import fake_predictions, write_run
from processes import SLOW_TINY, epochs_in_history, lock_files, start, summary_of, wait_for

MB = r"(\d+\.\d{3}) MB"


def mount_tmpfs(where) -> bool:
    where.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.fixture(params=["tmpfs", "rlimit"])
def no_room(request, tmp_path):
    """(directory, how): `how.fill(keep)` leaves `keep` bytes of room for one file; `how.preexec` for a process."""
    where = tmp_path / "disk"
    if request.param == "tmpfs":
        if not mount_tmpfs(where):
            pytest.skip("cannot mount a tmpfs here (needs root); the rlimit case covers this machine")
        yield where, TmpfsFull(where)
        subprocess.run(["umount", str(where)], check=True)
    else:
        where.mkdir()
        yield where, FileSizeLimit()


class TmpfsFull:
    """A full tmpfs: a filler file takes all but `keep` bytes."""

    strerror, room = "No space left on device", rf"{MB} free on its file system"

    def __init__(self, where):
        self.filler = where / "filler"

    def fill(self, keep: int) -> None:
        free = shutil.disk_usage(self.filler.parent).free + (self.filler.stat().st_size if self.filler.exists() else 0)
        self.filler.write_bytes(b"\0" * max(free - keep, 0))

    def empty(self) -> None:
        self.filler.unlink()

    def limit(self):
        return None  # the device itself is full: nothing to set in the process

    def inside(self):
        return _Nothing()


class FileSizeLimit:
    """RLIMIT_FSIZE: no file may grow past `keep` bytes (Python ignores SIGXFSZ, so a write gets EFBIG)."""

    strerror, room = "File too large", rf"the file-size limit \(ulimit -f\) is {MB}"

    def __init__(self):
        self.keep = None

    def fill(self, keep: int) -> None:
        self.keep = keep

    def empty(self) -> None:
        self.keep = None

    def limit(self):
        keep = self.keep
        return None if keep is None else (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (keep, keep)))

    def inside(self):
        return _Limited(self.keep)


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Limited(_Nothing):
    """RLIMIT_FSIZE in this process for the block (the soft limit only, so it can be raised again)."""

    def __init__(self, keep):
        self.keep = keep

    def __enter__(self):
        self.before = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.keep, self.before[1]))
        return self

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.before)
        return False


def test_full_disk_during_a_checkpoint_fails_the_job_in_one_line_and_a_rerun_with_space_resumes(tmp_path, cli_env, no_room):
    disk, how = no_room
    run_dir, epochs = disk / "run", 6
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    command = ["train.py", *SLOW_TINY, f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}"]
    first = start(command, cli_env, tmp_path / "first")  # trains until stopped, with room
    wait_for(lambda: ckpt.exists(), first)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 143
    before = {name: (run_dir / name).read_bytes() for name in ("checkpoints/last.ckpt", "history.csv")}
    trained = len(epochs_in_history(run_dir))

    how.fill(keep=len(before["checkpoints/last.ckpt"]) // 2)  # room for the small run files, not a checkpoint
    full = subprocess.run([sys.executable, *command], cwd=REPO, env={**os.environ, **cli_env}, capture_output=True,
                          text=True, timeout=300, preexec_fn=how.limit())  # fmt: skip
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr[-3000:]
    lines = [line for line in full.stderr.splitlines() if line.startswith(("train.py:", "[cloudml]"))]
    assert len(lines) == 1, full.stderr[-3000:]
    match = re.fullmatch(rf"train\.py: error: {re.escape(str(ckpt))}: cannot be written \({how.strerror}\): "
                         rf"needs {MB}, {how.room}; the previous version is intact", lines[0])  # fmt: skip
    assert match, lines[0]
    needed, room = float(match[1]), float(match[2])
    assert needed == pytest.approx(len(before["checkpoints/last.ckpt"]) / 1e6, abs=0.002) and room < needed
    assert not [p.name for p in run_dir.rglob("*.tmp")]  # the partial temp file is gone
    assert ckpt.read_bytes() == before["checkpoints/last.ckpt"]
    assert torch.load(ckpt, weights_only=True)["epoch"] == trained - 1  # the previous checkpoint loads
    history = epochs_in_history(run_dir)
    assert history == list(range(len(history))) and len(history) in (trained, trained + 1)
    summary = summary_of(run_dir)
    assert summary["status"] == "failed" and summary["error"] == lines[0].removeprefix("train.py: error: ")
    assert lock_files(run_dir) == []

    how.empty()
    again = run_cli(*command, env=cli_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{run_dir}: resume |" in again.stdout
    assert epochs_in_history(run_dir) == list(range(epochs))
    assert summary_of(run_dir)["status"] == "completed" and summary_of(run_dir)["epochs_completed"] == epochs


@pytest.mark.parametrize("writer", ["history", "summary", "predictions"])
def test_a_run_file_that_does_not_fit_keeps_the_previous_one_and_says_how_much_it_needed(no_room, writer):
    disk, how = no_room
    path = disk / {"history": "history.csv", "summary": "summary.json", "predictions": "predictions.npz"}[writer]
    write = {"history": lambda n: write_text(path, "epoch,val_r2\n" + "0,0.5\n" * (n // 6)),  # about n bytes each
             "summary": lambda n: write_json(path, {"status": "running", "notes": ["x" * 100] * (n // 108)}),
             "predictions": lambda n: write_npz(path, pred=np.zeros(n // 16), target=np.ones(n // 16))}[writer]
    write(1000)
    old = path.read_bytes()
    how.fill(keep=20_000)
    with how.inside(), pytest.raises(NoSpaceError) as caught:
        write(200_000)
    message = str(caught.value)
    match = re.fullmatch(rf"{re.escape(str(path))}: cannot be written \({how.strerror}\): needs {MB}, {how.room}; "
                         "the previous version is intact", message)  # fmt: skip
    assert match, message
    assert 0.2 <= float(match[1]) <= 0.3 and float(match[2]) < float(match[1])
    assert path.read_bytes() == old and not [p.name for p in disk.iterdir() if p.name.endswith(".tmp")]


def test_analyze_on_a_full_disk_says_which_result_did_not_fit_in_one_line(tmp_path, no_room):
    disk, how = no_room
    sweep_dir, results = tmp_path / "sweep", disk / "results"
    target = np.linspace(0.2, 1.8, 200)
    rng = np.random.default_rng(0)
    for lam in (0, 1):
        write_run(sweep_dir, lam, 0, target=target, pred=fake_predictions(target, 0.6, 0.3, rng),
                  train_index=np.arange(200), val_index=np.arange(200, 400))  # fmt: skip
    results.mkdir()
    how.fill(keep=0)
    result = subprocess.run([sys.executable, "analyze.py", f"sweep_dir={sweep_dir}", f"results_dir={results}",
                             f"selected_loss_config={tmp_path / 'selected.yaml'}"], cwd=REPO, capture_output=True,
                            text=True, timeout=300, preexec_fn=how.limit())  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("analyze.py: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert re.fullmatch(rf"analyze\.py: error: {re.escape(str(results))}/[\w.]+: cannot be written "
                        rf"\({how.strerror}\): needs {MB}, {how.room}; nothing was written", errors[0]), errors[0]  # fmt: skip
    assert not [p.name for p in results.iterdir() if p.name.endswith(".tmp")]
