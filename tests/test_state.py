"""The state store: migrations, idempotent saves, all-or-nothing per source, backoff."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.migrations import MIGRATIONS
from storage.state import SQLiteStateStore
from tracker.collect.backoff import BackoffPolicy
from tracker.models import Item, ItemKind, Validators

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def item(ident: str, title: str = "T", text: str = "body") -> Item:
    return Item(
        id=ident,
        source="blog",
        source_kind="feed",
        kind=ItemKind.POST,
        url=f"https://blog.example/{ident}",
        title=title,
        text=text,
        published=NOW - timedelta(days=1),
        extra={"tags": ["x"]},
    )


@pytest.fixture
def store(tmp_path: Path):
    with SQLiteStateStore(tmp_path / "state.sqlite3") as s:
        yield s


def test_a_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    SQLiteStateStore(path).close()
    versions = [
        r[0] for r in sqlite3.connect(path).execute("SELECT version FROM schema_migrations")
    ]
    assert versions == [v for v, _, _ in MIGRATIONS]
    SQLiteStateStore(path).close()  # reopening applies nothing twice


def test_saving_the_same_items_twice_neither_duplicates_nor_loses(store: SQLiteStateStore) -> None:
    first = store.save_success("blog", "feed", [item("a"), item("b")], Validators(), "ok", NOW)
    again = store.save_success("blog", "feed", [item("a"), item("b")], Validators(), "ok", NOW)
    assert (first.new, again.new, again.unchanged) == (2, 0, 2)
    assert [i.id for i in store.items("blog")] == ["a", "b"]


def test_a_changed_item_is_updated_in_place(store: SQLiteStateStore) -> None:
    store.save_success("blog", "feed", [item("a", title="Old")], Validators(), "ok", NOW)
    counts = store.save_success("blog", "feed", [item("a", title="New")], Validators(), "ok", NOW)
    assert (counts.new, counts.updated) == (0, 1)
    (stored,) = store.items("blog")
    assert stored.title == "New" and stored.extra == {"tags": ["x"]}
    assert stored.published == NOW - timedelta(days=1)


def test_a_crash_while_saving_a_source_leaves_nothing_half_written(store: SQLiteStateStore) -> None:
    store.save_success("blog", "feed", [item("a")], Validators(etag='"v1"'), "ok", NOW)

    def items_then_crash():
        yield item("b")
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        store.save_success("blog", "feed", items_then_crash(), Validators(etag='"v2"'), "ok", NOW)
    assert [i.id for i in store.items("blog")] == ["a"]
    state = store.source_state("blog")
    assert state is not None and state.validators.etag == '"v1"'


def test_failures_back_off_exponentially_up_to_a_cap(store: SQLiteStateStore) -> None:
    policy = BackoffPolicy(base=timedelta(minutes=15), cap=timedelta(hours=2))
    delays = []
    for _ in range(5):
        state = store.save_failure("blog", "feed", "boom", NOW, lambda n: policy.retry_at(n, NOW))
        assert state.next_attempt_after is not None
        delays.append(state.next_attempt_after - NOW)
    assert delays == [timedelta(minutes=m) for m in (15, 30, 60, 120, 120)]
    assert state.consecutive_failures == 5 and state.last_error == "boom"
    assert state.backing_off(NOW + timedelta(minutes=119))
    assert not state.backing_off(NOW + timedelta(minutes=121))


def test_a_success_clears_the_backoff_but_remembers_the_last_error(store: SQLiteStateStore) -> None:
    store.save_failure("blog", "feed", "boom", NOW, lambda n: BackoffPolicy().retry_at(n, NOW))
    store.save_success("blog", "feed", [], Validators(), "ok", NOW + timedelta(hours=1))
    state = store.source_state("blog")
    assert state is not None
    assert state.consecutive_failures == 0 and state.next_attempt_after is None
    assert state.last_success == NOW + timedelta(hours=1) and state.last_error == "boom"


def test_stats_count_items_per_source_and_kind(store: SQLiteStateStore) -> None:
    store.save_success("blog", "feed", [item("a"), item("b")], Validators(), "ok", NOW)
    store.save_failure("down", "feed", "could not connect", NOW, lambda n: NOW)
    stats = {s.name: s for s in store.stats()}
    assert stats["blog"].items == 2 and stats["blog"].items_by_kind == {"post": 2}
    assert stats["down"].items == 0 and stats["down"].state.last_error == "could not connect"
