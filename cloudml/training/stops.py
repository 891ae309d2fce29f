"""Ctrl-C (SIGINT) and SIGTERM stop a job at once and say so: its summary is marked `interrupted`
and the process exits 130 / 143 (128 + the signal), so a shell or a scheduler sees that it did not
finish. Torch-free: train.py installs the handlers for the whole process before Hydra starts."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from cloudml.errors import CloudMLError

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stopping = False  # signals are process-wide: one stop per process
_installer = os.getpid()  # the process whose handlers these are (a forked child inherits them)


class Interrupted(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM. A BaseException, like KeyboardInterrupt, so
    that no `except Exception` on the way swallows it; unlike it, Lightning lets it through unchanged."""

    def __init__(self, signum: int):
        self.signal = signal.Signals(signum).name
        self.exit_code = 128 + int(signum)
        super().__init__(f"stopped by {self.signal}")


def _raise(signum, frame) -> None:
    global _stopping
    if _stopping or os.getpid() != _installer:
        return  # a second signal while the stop is recorded; a forked DataLoader worker waits for the main process
    _stopping = True
    raise Interrupted(signum)


@contextmanager
def on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted while the block runs (in the main thread only). A signal
    this process inherited as ignored (a background job of a script) stays ignored."""
    global _installer
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _installer = os.getpid()
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def hold() -> None:
    """A stop is being recorded: a signal from now on is ignored (one stop per process)."""
    global _stopping
    _stopping = True


def outcome(exc: BaseException) -> tuple:
    """(status, interrupted_by, error) that the summary records for a job that ended with `exc`."""
    if isinstance(exc, Interrupted):
        return "interrupted", exc.signal, None
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "SIGINT", None
    if isinstance(exc, SystemExit):  # e.g. submitit's requeue after USR2, Lightning's own SIGTERM exit
        return "interrupted", "SIGTERM" if type(exc).__name__ == "SIGTERMException" else "exit", None
    return "failed", None, one_line(exc)


def one_line(exc: BaseException) -> str:
    """A user-facing error as is; any other as its type and first line."""
    if isinstance(exc, CloudMLError):
        return str(exc)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}"[:300] if text else type(exc).__name__
