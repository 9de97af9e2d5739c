"""SQLite's troubles reach people as a sentence with the file and the remedy, from every store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storage.chunks import ChunkStore
from storage.embedding_cache import EmbeddingCache
from storage.errors import remedy
from storage.feedback import SQLiteFeedbackStore
from storage.notices import NoticeStore
from storage.outbox import DigestOutbox
from storage.queue import ProcessingQueue
from storage.state import SQLiteStateStore
from storage.stories import SQLiteStoryStore
from tracker.errors import StorageError

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

READS: dict[str, Callable[[SQLiteStateStore], Any]] = {
    "sources": lambda s: s.source_states(),
    "stories": lambda s: SQLiteStoryStore(s).stories(),
    "outbox": lambda s: DigestOutbox(s).recent_stories(),
    "votes": lambda s: SQLiteFeedbackStore(s).votes(),
    "notices": lambda s: NoticeStore(s).keys(),
    "queue": lambda s: ProcessingQueue(s).count_pending(),
    "embeddings": lambda s: EmbeddingCache(s).get(["a1b2"], "local"),
    "chunks": lambda s: ChunkStore(s).rows(),
}


@pytest.fixture
def store(tmp_path: Path):
    with SQLiteStateStore(tmp_path / "state.db") as store:
        yield store


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_store_used_after_closing_says_so_rather_than_crashing(store, read):
    store.close()
    with pytest.raises(StorageError, match=r"state\.db .*closed"):
        read(store)


@pytest.mark.parametrize(
    ("table", "read"),
    [
        ("notices", READS["notices"]),
        ("feedback", READS["votes"]),
        ("embeddings", READS["embeddings"]),
    ],
)
def test_a_store_missing_its_tables_points_at_another_version(store, table, read):
    store.db.execute(f"DROP TABLE {table}")
    with pytest.raises(StorageError, match="not the ones this version of tracker makes"):
        read(store)


def test_a_write_while_another_process_holds_the_store_names_the_remedy(store, tmp_path):
    store.db.execute("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError) as held:
            NoticeStore(store).add("health:blog", NOW)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert str(tmp_path / "state.db") in str(held.value)
    assert "another tracker process is holding it" in str(held.value)


@pytest.mark.parametrize(
    "bug",
    [
        sqlite3.IntegrityError("UNIQUE constraint failed: items.id"),
        sqlite3.ProgrammingError("Incorrect number of bindings supplied"),
        sqlite3.InterfaceError("Error binding parameter 1"),
    ],
)
def test_a_bug_is_not_dressed_up_as_the_machines_fault(bug):
    assert remedy(bug) is None


def test_a_damaged_file_is_told_apart_from_a_busy_one():
    assert "damaged" in (remedy(sqlite3.DatabaseError("file is not a database")) or "")
    assert "holding it" in (remedy(sqlite3.OperationalError("database is locked")) or "")
