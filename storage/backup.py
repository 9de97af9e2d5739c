"""A consistent copy of a tracker home, taken while it runs, and put back into an empty one.

The state store is copied with SQLite's online backup API: one consistent snapshot, WAL
included, however busy the writer. Chroma's folder is copied while its writes are held
(``writes_held``: the vector store takes the same lock around every write), its own SQLite
file again through the backup API, after the index files so that it is never older than
them; a restore then opens as a store that was simply stopped at that moment. The rest of
the home (the digests written as files) is copied as it is.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from storage.errors import machine_trouble
from tracker.errors import StorageError

if sys.platform != "win32":
    import fcntl

#: What a home holds besides its stores: copied as it is.
OTHER_PARTS = ("digests",)


@dataclass(frozen=True)
class Copied:
    """One part of a home, copied: what it is, where it went, and how big it is."""

    what: str
    path: Path
    size: int


@dataclass
class _Hold:
    """This process's hold on one folder: threads take turns, and the one holding may
    take it again (a write inside a larger write)."""

    turn: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    fd: int = -1


_holds: dict[Path, _Hold] = {}
_holds_lock = threading.Lock()


@contextmanager
def writes_held(folder: Path) -> Iterator[None]:
    """No tracker thread or process writes to the Chroma store in ``folder`` meanwhile: an
    advisory lock on ``<folder>.lock`` (between processes) and a lock of this process's
    (between its threads), held by every write to the vectors and the chunks they go with,
    and taken by a backup while it copies."""
    with _holds_lock:
        hold = _holds.setdefault(folder.resolve(), _Hold())
    with hold.turn:
        if hold.depth == 0 and sys.platform != "win32":
            hold.fd = _flocked(folder.with_name(folder.name + ".lock"), fcntl.LOCK_EX)
        hold.depth += 1
        try:
            yield
        finally:
            hold.depth -= 1
            if hold.depth == 0 and hold.fd >= 0:
                os.close(hold.fd)  # closing drops the lock
                hold.fd = -1


class _Unwritable(OSError):
    """A lock file that could not be made or opened: a read-only or full disk, not a lock
    held by another process (its errno says which)."""


class HomeInUse(StorageError):
    """A restore was asked for while another tracker command works on the home."""


@contextmanager
def using_home(home: Path, alone: bool = False) -> Iterator[None]:
    """Every ``tracker`` command holds its home, shared, while it runs (``serve`` for its
    whole life, ``collect`` from cron for its run); ``restore`` holds it ``alone``, and is
    refused while any other command works on it, since it replaces the files they write.
    A shared holder waits for a restore under way to finish."""
    if sys.platform == "win32" or not (alone or home.is_dir()):
        yield  # no fcntl; or nothing to protect yet (a first run makes the home)
        return
    how = (fcntl.LOCK_EX | fcntl.LOCK_NB) if alone else fcntl.LOCK_SH
    try:
        fd = _flocked(home / "home.lock", how)
    except _Unwritable as exc:
        raise machine_trouble(exc, home) or StorageError(
            f"cannot write in {home} ({exc.strerror}); set TRACKER_HOME to a folder you "
            "can write to"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise HomeInUse(
            f"another tracker command is working on {home} (tracker serve, or a collect "
            "or process from cron); stop it or let it finish, then restore"
        ) from None
    try:
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _flocked(path: Path, how: int) -> int:
    """An open descriptor of ``path`` (made if need be) holding ``flock(how)``; closing it
    drops the lock."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _Unwritable(exc.errno, exc.strerror, str(path)) from None
    try:
        fcntl.flock(fd, how)
    except BaseException:
        os.close(fd)
        raise
    return fd


def copy_database(source: Path, target: Path, settled: bool = False) -> int:
    """A consistent copy of the SQLite file ``source`` at ``target``; its size. ``settled``:
    nothing writes ``source`` (a backup being restored), so it is read as it lies, without
    making its -shm file (a backup on read-only media restores too)."""
    try:
        # A live database is not opened read-only: a reader in WAL mode may need its -shm.
        src = (
            sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True)
            if settled
            else sqlite3.connect(source, timeout=30)
        )
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot copy {source} to {target} ({exc})") from None
    return target.stat().st_size


def back_up(home: Path, state: Path, chroma: Path | None, dest: Path) -> list[Copied]:
    """Copy the home whose state store is ``state`` and Chroma folder ``chroma`` (None: the
    vectors live on a server) into the empty (or new) folder ``dest``."""
    _must_be_empty(dest, "back up into", "give a new folder")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        # Held over both copies: the chunks in the state store and their vectors are
        # written together, so the copies hold the same ones.
        with writes_held(chroma or home / "chroma"):
            size = copy_database(state, dest / state.name)
            copied = [Copied("state store", dest / state.name, size)]
            if chroma is not None and chroma.is_dir():
                copied.append(Copied("vectors", dest / chroma.name, _copy_chroma(chroma, dest)))
        copied.extend(_copy_others(home, dest))
    except OSError as exc:
        raise StorageError(f"cannot back up into {dest} ({exc.strerror or exc})") from None
    return copied


def check_backup(source: Path, state_name: str) -> None:
    """Refuse, before anything of the home is touched, what cannot be restored: a folder
    that is no backup, a damaged one, or one a newer tracker made."""
    from storage.migrations import SCHEMA_VERSION

    state = source / state_name
    if not state.is_file():
        raise StorageError(
            f"{source} is not a tracker backup: it has no {state_name}; give the folder "
            "tracker backup wrote"
        )
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro&immutable=1", uri=True)
        try:
            checked = db.execute("PRAGMA integrity_check").fetchone()[0]
            newest = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StorageError(f"{state} cannot be read as a tracker state store ({exc})") from None
    if checked != "ok":
        raise StorageError(f"{state} fails SQLite's integrity check ({checked}); use another")
    if newest is not None and int(newest) > SCHEMA_VERSION:
        raise StorageError(
            f"{source} was made by a newer tracker (schema {newest}); this one knows schema "
            f"{SCHEMA_VERSION} at most: upgrade tracker to restore it"
        )


def restore(source: Path, home: Path, state_name: str, chroma_name: str) -> list[Copied]:
    """Put the backup in ``source`` into ``home``; the caller decides whether a home that
    is not empty may be overwritten (``clear`` it first)."""
    check_backup(source, state_name)
    try:
        home.mkdir(parents=True, exist_ok=True)
        target = home / state_name
        copied = [Copied("state store", target, copy_database(source / state_name, target, True))]
        if (source / chroma_name).is_dir():
            shutil.copytree(source / chroma_name, home / chroma_name)
            copied.append(Copied("vectors", home / chroma_name, _size(home / chroma_name)))
        copied.extend(_copy_others(source, home))
    except OSError as exc:
        raise StorageError(f"cannot restore into {home} ({exc.strerror or exc})") from None
    return copied


def clear(home: Path, state_name: str, chroma_name: str) -> None:
    """Remove what a restore would replace (the stores and the other parts) from ``home``."""
    for suffix in ("", "-wal", "-shm"):
        (home / f"{state_name}{suffix}").unlink(missing_ok=True)
    for part in (chroma_name, *OTHER_PARTS):
        if (home / part).is_dir():
            shutil.rmtree(home / part)


def holds_a_home(home: Path, state_name: str, chroma_name: str) -> bool:
    return any((home / p).exists() for p in (state_name, chroma_name, *OTHER_PARTS))


def _copy_chroma(chroma: Path, dest: Path) -> int:
    target = dest / chroma.name
    target.mkdir(parents=True, exist_ok=True)
    databases = []
    for path in sorted(chroma.rglob("*")):
        relative = path.relative_to(chroma)
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)
        elif path.name.endswith((".sqlite3-wal", ".sqlite3-shm")):
            continue  # folded into the database's copy
        elif path.suffix == ".sqlite3":
            databases.append(path)
        else:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    for path in databases:  # last: never older than the index files copied before
        copy_database(path, target / path.relative_to(chroma))
    return _size(target)


def _copy_others(source: Path, dest: Path) -> list[Copied]:
    copied = []
    for part in OTHER_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, dest / part, dirs_exist_ok=True)
            copied.append(Copied(part, dest / part, _size(dest / part)))
    return copied


def _must_be_empty(folder: Path, doing: str, fix: str) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise StorageError(f"cannot {doing} {folder}: it is not an empty folder; {fix}")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
