"""One live owner per job directory: a lock file naming its host and PID, with a heartbeat.

The lock is flufl.lock's NFS-safe lock file (a claim file hard-linked to `.lock`; `fcntl` locks
are not reliable on network file systems): its content names the owner's host and PID, and its
modification time is the heartbeat, set `lifetime_s` ahead by the owner every `lifetime_s / 4`.
A second launch of the same sweep skips a job whose lock a live process holds. A lock whose owner
is gone is taken over: at once on the owner's host when its PID no longer runs, and from any host
once the heartbeat is more than `SLOP_S` overdue (a node that was lost, a process that hangs).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterator, Optional

import flufl.lock
from psutil import pid_exists

from cloudml.errors import CloudMLError
from cloudml.rundir.names import LOCK

LIFETIME_S = 60.0
SLOP_S = 10.0  # clock skew allowed between machines: what flufl.lock allows before it breaks a lock
# The node name: socket.getfqdn(), flufl.lock's default, is 'localhost' on many cluster nodes, so two
# nodes would look like one host and each would judge the other's PIDs.
HOST = socket.gethostname()
# flufl.lock logs a refused claim at ERROR level; here that is the normal "held" case, said in one line.
logging.getLogger("flufl.lock").propagate = False


@dataclass(frozen=True)
class Holder:
    """Who a lock file names: host, PID, and when its heartbeat runs out (epoch seconds)."""

    host: str
    pid: int
    expires: float
    claim: str  # the lock file's content: the owner's claim file, which only that owner writes

    def __str__(self) -> str:
        return f"host {self.host}, pid {self.pid}"

    def gone(self, now: Optional[float] = None) -> Optional[str]:
        """Why the owner is gone (its PID does not run here, its heartbeat stopped), or None if it may live."""
        now = time.time() if now is None else now
        if self.host == HOST and self.pid != os.getpid() and not pid_exists(self.pid):
            return "the process is gone"
        if now > self.expires + SLOP_S:
            return f"its heartbeat stopped {now - self.expires:.0f} s ago"
        return None


def read_holder(job_dir: Path) -> Optional[Holder]:
    """The holder the job's lock file names, or None when the job is not locked."""
    path = Path(job_dir) / LOCK
    try:
        claim, expires = path.read_text(encoding="utf-8", errors="replace").strip(), path.stat().st_mtime
    except FileNotFoundError:
        return None
    parts = claim.rsplit(flufl.lock.SEP, 3)  # <lock file>|<host>|<pid>|<random>
    pid = int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else -1
    return Holder(host=parts[1] if pid >= 0 else "unknown", pid=pid, expires=expires, claim=claim)


class _NodeLock(flufl.lock.Lock):
    """flufl.lock's lock with the node name in its claims (see HOST)."""

    @property
    def hostname(self) -> str:
        return HOST


class JobLock:
    """This process's claim on a job directory. After `acquire`, `held_by` names the live owner that
    kept it (the job is not ours), or `taken_over` the gone owner it replaced; while it is held a
    thread refreshes the heartbeat and notes when another process has taken the lock over."""

    def __init__(self, job_dir: Path, lifetime_s: float = LIFETIME_S):
        self.job_dir, self.path, self.lifetime_s = Path(job_dir), Path(job_dir) / LOCK, float(lifetime_s)
        self._lock = _NodeLock(str(self.path), lifetime=timedelta(seconds=self.lifetime_s))
        self.held_by: Optional[Holder] = None
        self.taken_over: Optional[tuple] = None  # (Holder, why it was gone)
        self.lost, self.lost_to = False, None  # lost_to: who holds the lock now, if anyone
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def acquire(self) -> bool:
        """Take the lock, or the lock of an owner that is gone; False when a live owner holds it."""
        self.job_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # each round either claims, meets a live owner, or removes a gone one
            try:
                self._lock.lock(timeout=timedelta(0))  # a single try: never wait for another owner
            except flufl.lock.TimeOutError:
                holder = read_holder(self.job_dir)
                why = holder.gone() if holder is not None else None
                if holder is not None and why is None:
                    self.held_by = holder
                    return False
                if holder is not None and _break(self.job_dir, holder):
                    self.taken_over = (holder, why)
                continue
            self._beat = threading.Thread(target=self._heartbeat, name=f"lock {self.job_dir.name}", daemon=True)
            self._beat.start()
            return True
        self.held_by = read_holder(self.job_dir) or Holder("unknown", -1, 0.0, "")
        return False

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lifetime_s / 4):
            try:
                if not self._lock.is_locked:  # checking refreshes the heartbeat; False: another took it over
                    self._lose()
                    return
            except OSError:
                continue  # a network file system hiccup: try again at the next beat

    def _lose(self) -> None:
        self.lost, self.lost_to = True, read_holder(self.job_dir)

    def owned(self) -> bool:
        """Whether this process still owns the job (read from the lock file, not only the last beat)."""
        if not self.lost and not self._lock.is_locked:
            self._lose()
        return not self.lost

    def check(self) -> None:
        """Raise a CloudMLError unless this process still owns the job (before it writes run files)."""
        if not self.owned():
            by = f" by {self.lost_to}" if self.lost_to is not None else ""
            raise CloudMLError(f"{self.job_dir}: its lock was taken over{by} while this process's heartbeat was "
                               "overdue; stopped without writing")  # fmt: skip

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        self._lock.unlock(unconditionally=True)  # removes the lock only if it is still ours, and our claim file


def _break(job_dir: Path, gone: Holder) -> bool:
    """Remove the lock of an owner that is gone, if it is still that owner's; True when removed.
    Breakers take turns (a short lock of their own), so one cannot remove a lock another just took."""
    turn = _NodeLock(str(Path(job_dir) / f"{LOCK}.break"), lifetime=timedelta(seconds=30))
    try:
        turn.lock(timeout=timedelta(seconds=60))
    except flufl.lock.TimeOutError:
        return False
    try:
        now = read_holder(job_dir)
        if now is None or now.claim != gone.claim or now.gone() is None:
            return False
        (Path(job_dir) / LOCK).unlink(missing_ok=True)
        if gone.claim:  # the gone owner's claim file lies beside the lock (a mount may name the directory otherwise)
            (Path(job_dir) / Path(gone.claim).name).unlink(missing_ok=True)
        return True
    finally:
        turn.unlock(unconditionally=True)


_OWNED: dict = {}  # job directory -> the JobLock this process holds on it


@contextmanager
def claimed(job_dir: Path, lifetime_s: float = LIFETIME_S) -> Iterator[JobLock]:
    """Claim the job directory for the duration of the block; see `held_by` and `taken_over`."""
    lock = JobLock(job_dir, lifetime_s)
    if not lock.acquire():
        yield lock
        return
    _OWNED[lock.job_dir] = lock
    try:
        yield lock
    finally:
        _OWNED.pop(lock.job_dir, None)
        lock.release()


def check_owned(job_dir: Path) -> None:
    """Raise a CloudMLError if this process claimed `job_dir` and another has taken it over since.
    A process that never claimed it (a DDP rank > 0, a bare `build`) has nothing to check."""
    lock = _OWNED.get(Path(job_dir))
    if lock is not None:
        lock.check()


def effective_status(job_dir: Path, status: str) -> str:
    """`status` as summary.json records it, except that a `running` job whose lock names an owner that
    is gone (killed, its node lost) is `interrupted`: nothing trains it, and a re-run resumes it."""
    if status != "running":
        return status
    holder = read_holder(job_dir)
    return "interrupted" if holder is not None and holder.gone() else status
