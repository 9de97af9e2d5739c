"""``tracker backup DEST`` and ``tracker restore SRC``: a home copied while it runs, and put
back into an empty one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.cli.exits import EXIT_CONFIG, EXIT_OK
from tracker.errors import StorageError, TrackerError
from tracker.settings import Settings

if TYPE_CHECKING:
    from storage.backup import Copied


def add_backup_commands(commands: Any) -> None:
    backup = commands.add_parser(
        "backup", help="copy the home (state store, vectors, digests), even while serve runs"
    )
    backup.add_argument("dest", metavar="DEST", type=Path, help="a new or empty folder")
    backup.set_defaults(run=cmd_backup)
    put_back = commands.add_parser("restore", help="put a backup into an empty home")
    put_back.add_argument("source", metavar="SRC", type=Path, help="a folder tracker backup made")
    put_back.add_argument(
        "--force", action="store_true", help="replace what the home holds (serve must be stopped)"
    )
    put_back.set_defaults(run=cmd_restore)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from storage.backup import back_up

    if not settings.state_db.is_file():
        raise StorageError(f"there is nothing to back up: {settings.state_db} does not exist")
    chroma = None if settings.chroma_url else settings.chroma_path
    copied = back_up(settings.home, settings.state_db, chroma, args.dest)
    _report("Backed up", settings.home, args.dest, copied)
    if settings.chroma_url:
        print(f"  (the vectors live on the Chroma server at {settings.chroma_url}: not copied)")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from storage.backup import check_backup, clear, holds_a_home, restore, writes_held
    from storage.state import SQLiteStateStore
    from tracker.runtime.lock import InstanceLock

    home, state, chroma = settings.home, settings.state_db.name, settings.chroma_path.name
    if holds_a_home(home, state, chroma) and not args.force:
        print(
            f"error: {home} already holds a tracker home; restore into an empty one "
            "(set TRACKER_HOME), or add --force to replace it",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    check_backup(args.source, state)  # before anything of the home is touched
    # No serve may run on the home meanwhile, nor any write of vectors.
    with InstanceLock(settings.lock_path), writes_held(settings.chroma_path):
        clear(home, state, chroma)
        copied = restore(args.source, home, state, chroma)
        with SQLiteStateStore(settings.state_db) as store:  # migrated if it is older
            checked = store.db.execute("PRAGMA integrity_check").fetchone()[0]
    if checked != "ok":
        raise TrackerError(f"the restored state store fails SQLite's integrity check: {checked}")
    _report("Restored", args.source, home, copied)
    return EXIT_OK


def _report(done: str, source: Path, dest: Path, copied: list[Copied]) -> None:
    total = sum(c.size for c in copied)
    print(f"{done} {source} into {dest}: {_size(total)}")
    for c in copied:
        print(f"  {c.what:<12} {_size(c.size):>9}  {c.path}")


def _size(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    scaled, unit = size / 1024, "KB"
    for bigger in ("MB", "GB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, bigger
    return f"{scaled:,.1f} {unit}"
