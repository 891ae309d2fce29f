"""Atomic file writes: a reader (or a kill -9) never sees a half-written file, and a file that does
not fit (full disk, quota, `ulimit -f`) is one line saying what was needed, with the partial temp
file removed and the previous version intact."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from cloudml.errors import CloudMLError

_UMASK = os.umask(0)
os.umask(_UMASK)
# The errors that mean "does not fit": no space on the device, a disk quota, the file-size limit.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class NoSpaceError(CloudMLError):
    """A file that did not fit; the message names it, the space it needed and the space there was."""


def _mb(n: int) -> str:
    return f"{n / 1e6:.3f} MB"


def _room(path: Path, exc: OSError) -> str:
    """What there was: the free space of the file system, or the file-size limit that was hit."""
    if exc.errno == errno.EFBIG:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            return f"the file-size limit (ulimit -f) is {_mb(limit)}"
    return f"{_mb(shutil.disk_usage(path.parent).free)} free on its file system"


def no_space_message(path: Path, exc: OSError, size: Optional[int], written: int) -> str:
    """The one line for `path` that did not fit (`size`: the bytes it needs, when known)."""
    needs = f"needs {_mb(size)}" if size is not None else f"needs more than {_mb(written)}"
    kept = "the previous version is intact" if path.exists() else "nothing was written"
    return f"{path}: cannot be written ({exc.strerror}): {needs}, {_room(path, exc)}; {kept}"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], size: Optional[int] = None) -> Path:
    """Call `write(tmp_path)` on a temp file beside `path`, then rename it over `path`. When it does
    not fit, raise NoSpaceError (`size`, the bytes to write when known, goes into its message)."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should read like any file
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        written = tmp.stat().st_size if tmp is not None and tmp.exists() else 0
        if tmp is not None:
            tmp.unlink(missing_ok=True)  # first: the free space reported is then the space there is
        raise NoSpaceError(no_space_message(path, exc, size, written)) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


def _write_synced(tmp: Path, data) -> None:
    # fsync: a network file system may report a full disk only when the data reaches the server.
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> Path:
    return atomic_write(path, lambda tmp: _write_synced(tmp, data), size=memoryview(data).nbytes)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


def write_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    import numpy as np

    buffer = io.BytesIO()  # in memory first, so the size is known if it does not fit
    np.savez(buffer, **arrays)
    return write_bytes(path, buffer.getbuffer())
