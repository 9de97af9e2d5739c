"""One ``tracker serve`` per state folder, so two never post the same digest twice.

The lock is an advisory ``flock`` on a file in TRACKER_HOME (``serve.lock``).
The operating system drops it when the holding process ends, however it ends:
a clean exit, a crash, ``kill -9``, a power cut. So there is no stale lock to
detect or clean up, and the file is never deleted (deleting it would let a
second process lock a new file while the first still holds the old one). The
pid written inside is only there to tell a person which process to stop.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from types import TracebackType

from storage.errors import machine_trouble
from tracker.errors import TrackerError

if sys.platform != "win32":
    import fcntl


class AlreadyRunning(TrackerError):
    """Another process holds the lock: another ``tracker serve`` on the same state folder."""

    def __init__(self, path: Path, pid: int | None):
        self.path = path
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "its pid is not written yet"
        super().__init__(
            f"Another tracker serve is already running ({who}); it holds the lock {path}. "
            "Stop it first, or set TRACKER_HOME to a different folder to run a second, "
            "independent tracker."
        )


class InstanceLock:
    """An exclusive, non-blocking lock on ``path``; a context manager.

    ``acquire()`` either takes the lock at once or raises AlreadyRunning. The
    lock belongs to the open file, so a second InstanceLock on the same path
    fails even inside the same process, and child processes started with
    ``subprocess`` do not inherit it (Python opens files non-inheritable).
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this InstanceLock")
        if sys.platform == "win32":
            raise TrackerError(
                "tracker serve's single-instance lock needs fcntl, which Windows lacks; "
                "run tracker serve under WSL."
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only home or a full disk
            raise machine_trouble(exc, self.path.parent) or TrackerError(
                f"cannot make {self.path} ({exc.strerror}); set TRACKER_HOME to a folder "
                "you can write to"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning(self.path, holder) from None
            raise TrackerError(
                f"Cannot lock {self.path} ({exc.strerror}). Set TRACKER_HOME to a folder on a "
                "local disk."
            ) from exc
        # Ours now: replace whatever pid an earlier holder left behind.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up; safe to call when not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # still ours: no pid of a stopped process is left behind
        finally:
            os.close(fd)  # closing the file drops the flock

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The holder's pid, or None if it has not been written yet (or is not a number)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
