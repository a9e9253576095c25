"""Files a run owns: atomic writes, a writable check before any work, and a lock on a directory.

`write_atomic` writes beside the target and renames over it, so a reader (another process, or a
run killed mid-write) sees the old file or the new one, never a part. `RunLock(dir)` holds an
exclusive `flock` on dir/.lock for a run's lifetime: a second live run on the same directory is
refused with a message naming the holder's pid; the kernel drops the lock of a killed process,
so a stale lock file is simply taken over.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Writes `data` (text or bytes) to `path` atomically (a temporary file renamed over it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_writable(directory: str | Path, what: str = "results directory") -> Path:
    """Creates `directory` if needed and proves it writable (a probe file), or raises ValueError
    naming it: before any training or evaluation, not after."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write_probe_{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"the {what} {directory} is not writable ({e.strerror or e}): choose another one "
                         "(results_dir= / --results-dir) or fix its permissions") from None
    return directory


class RunLock:
    """An exclusive lock on `directory` (dir/.lock) held by this process until `release()` or the
    end of a `with` block. ValueError if another live process holds it."""

    def __init__(self, directory: str | Path, what: str = "run"):
        self.path = check_writable(directory, f"directory of this {what}") / ".lock"
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except ValueError:
                holder = {}
            os.close(fd)
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
                   if holder else "another process")
            raise ValueError(f"{self.path.parent} is in use by another {self.what} ({who}): wait for it to finish, "
                             "or give this one another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
