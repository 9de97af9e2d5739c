"""A full disk or a home that cannot be written ends any command with one sentence naming
the folder and the remedy, exit code 2, no traceback; what was saved before is kept. The
troubles are injected (no mount): SQLite's own SQLITE_FULL through max_page_count, the
error Chroma raises when its compaction cannot write, and the errno a read-only or full
file system gives."""

from __future__ import annotations

import errno
import os

import pytest

import storage.backup
from storage.errors import machine_trouble
from storage.state import SQLiteStateStore
from tracker.app import open_tracker
from tracker.cli import main
from tracker.settings import Settings

COMMANDS = [["collect"], ["serve"], ["ask", "What is new?"], ["stats"], ["digest"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_home_that_cannot_be_written_is_one_sentence(world, monkeypatch, capsys, command, code):
    home = Settings.from_env().home
    home.mkdir(parents=True, exist_ok=True)
    real_open = os.open

    def refusing(path, *args, **kwargs):
        if str(path).startswith(str(home)):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(storage.backup.os, "open", refusing)

    assert main(command) == 2

    said = capsys.readouterr()
    assert "Traceback" not in said.out + said.err
    assert f"cannot write in {home}" in said.err
    assert "set TRACKER_HOME to a folder you can write to" in said.err


def test_sqlite_full_ends_a_collect_with_one_sentence_and_keeps_what_was_saved(
    world, monkeypatch, capsys
):
    opened = SQLiteStateStore.__init__

    def nearly_full(self, path):
        opened(self, path)
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        self._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLITE_FULL soon

    monkeypatch.setattr(SQLiteStateStore, "__init__", nearly_full)

    assert main(["collect"]) == 2

    said = capsys.readouterr()
    assert "Traceback" not in said.out + said.err
    assert "database or disk is full" in said.err and "is the disk full?" in said.err

    monkeypatch.setattr(SQLiteStateStore, "__init__", opened)
    assert main(["collect"]) == 0  # space again: the run completes


def test_chromas_compaction_failure_says_the_disk_may_be_full(world, monkeypatch, capsys):
    from chromadb.api.models.Collection import Collection
    from chromadb.errors import InternalError

    def failing(*args, **kwargs):
        raise InternalError("Error in compaction: Failed to apply logs to the metadata segment")

    upsert = Collection.upsert
    monkeypatch.setattr(Collection, "upsert", failing)

    assert main(["collect"]) == 2

    said = capsys.readouterr()
    assert "Traceback" not in said.out + said.err
    chroma = Settings.from_env().home / "chroma"
    assert f"Chroma could not write its files in {chroma}" in said.err
    assert "is the disk full?" in said.err

    monkeypatch.setattr(Collection, "upsert", upsert)
    assert main(["collect"]) == 0  # space again: what was collected is processed now
    with open_tracker(Settings.from_env()) as tracker:
        assert tracker.vectors.count() > 0 and tracker.queue.count_pending() == 0


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "is full (No space left on device)"),
        (OSError(errno.EROFS, "Read-only file system"), "set TRACKER_HOME"),
        (RuntimeError("Error in compaction: Failed to apply logs"), None),
        (ValueError("a bug"), None),
    ],
)
def test_what_counts_as_the_machines_trouble(tmp_path, exc, said):
    trouble = machine_trouble(exc, tmp_path)
    assert (trouble is None) if said is None else (said in str(trouble))


def test_a_compaction_failure_on_a_nearly_full_disk_is_a_full_disk(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 0))
    trouble = machine_trouble(RuntimeError("Error in compaction: Failed to apply logs"), tmp_path)
    assert trouble is not None and f"the disk holding {tmp_path} is full" in str(trouble)
