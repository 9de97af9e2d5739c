"""What a failing SQLite becomes: a ``StorageError`` that names the file and the remedy.

Every store's public methods are wrapped (``@wrapped``, reader's ``wrap_exceptions`` is the
model), so the machine's troubles (a lock held too long, a full or read-only disk, a
damaged file, a store used after it was closed) reach the CLI, the runtime and the bot as
one sentence, never as a traceback. A broken constraint or bad SQL is a bug and surfaces as
one.
"""

from __future__ import annotations

import errno
import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tracker.errors import StorageError

C = TypeVar("C", bound=type)


def remedy(exc: sqlite3.Error) -> str | None:
    """What to do about ``exc``; None when it is a bug, not the machine."""
    said = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in said or "busy" in said:
            return "another tracker process is holding it; wait for it or stop it"
        if "readonly" in said or "read-only" in said:
            return (
                "the file or its folder is read-only; set TRACKER_HOME to a folder you can write to"
            )
        if "no such table" in said or "no such column" in said:
            return (
                "its tables are not the ones this version of tracker makes; was it made by a "
                "newer version, or changed by hand? Restore a backup or use that version"
            )
        if "full" in said or "disk" in said:
            return "is the disk full?"
        return "is another tracker holding it, or the disk full?"
    if isinstance(exc, sqlite3.ProgrammingError):
        return "it was closed; this is a bug, please report it" if "closed" in said else None
    if type(exc) is sqlite3.DatabaseError:  # SQLITE_CORRUPT, SQLITE_NOTADB
        return "the file is damaged; restore it from a backup, or move it aside to start afresh"
    return None


#: What the machine answers when a disk is full, or a folder cannot be written.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_FULL_WORDS = ("no space left", "disk is full", "disk full", "quota exceeded")
_READ_ONLY_WORDS = ("read-only file system", "readonly database", "permission denied")


def machine_trouble(exc: BaseException, folder: object) -> StorageError | None:
    """What a full disk or a folder that cannot be written means, as one sentence naming
    ``folder`` and the remedy; None when ``exc`` is neither. Chroma says it in its own
    words ("Error in compaction: Failed to apply logs to the metadata segment"), so its
    sentences are read too, and a compaction that fails on a nearly full disk is one."""
    said = str(exc).lower()
    full = isinstance(exc, OSError) and exc.errno in NO_SPACE
    full = full or any(w in said for w in _FULL_WORDS) or ("compaction" in said and _low(folder))
    if full:
        return StorageError(
            f"the disk holding {folder} is full ({_short(exc)}); free some space, then run "
            "the command again: what was saved before is kept, and the rest is done then"
        )
    read_only = isinstance(exc, OSError) and exc.errno in READ_ONLY
    if read_only or any(w in said for w in _READ_ONLY_WORDS):
        return StorageError(
            f"cannot write in {folder} ({_short(exc)}); set TRACKER_HOME to a folder you "
            "can write to"
        )
    return None


def _low(folder: object, below: int = 64 * 1024 * 1024) -> bool:
    """Whether the disk holding ``folder`` has less than ``below`` bytes free (or cannot say)."""
    import shutil
    from pathlib import Path

    path = Path(str(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < below
    except OSError:
        return True


def _short(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"


@contextmanager
def wrap_exceptions(where: object, doing: str = "use") -> Iterator[None]:
    """Turn what SQLite raises for the machine's reasons into a ``StorageError``."""
    try:
        yield
    except sqlite3.Error as exc:
        fix = remedy(exc)
        if fix is None:
            raise
        raise StorageError(f"cannot {doing} the state store at {where} ({exc}); {fix}") from None


def wrapped(cls: C) -> C:
    """Wrap every public method of a store class in ``wrap_exceptions``."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        if inspect.isgeneratorfunction(inspect.unwrap(member)):
            continue  # a context manager (a transaction) wraps its own body
        setattr(cls, name, _wrap(member))
    return cls


def _wrap(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with wrap_exceptions(_where(self)):
            return method(self, *args, **kwargs)

    return call


def _where(store: Any) -> object:
    """The database file a store works on, for the message."""
    for holder in (store, getattr(store, "state", None)):
        path = getattr(holder, "path", None)
        if path is not None:
            return path
    return getattr(store, "where", "its place")
