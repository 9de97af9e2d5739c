"""The state store: collected items and per-source fetch state, in SQLite.

Writing is one transaction per source: the items of a source, its new cache
validators and its success are committed together or not at all. A crash
mid-run therefore loses only the source being written, and the next run
fetches it again in full (its validators were not saved either).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from storage import pages
from storage.errors import remedy, wrap_exceptions, wrapped
from storage.migrations import NewerSchemaError, migrate
from storage.pages import PageCounts
from tracker import __version__
from tracker.errors import StorageError
from tracker.models import WITH_PAGE, HostWait, Item, ItemKind, PageChanges, PageTask, Validators
from tracker.times import from_iso, to_iso


@dataclass(frozen=True)
class SaveCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Items whose article page arrived (not updated upstream).
    completed: int = 0


@dataclass(frozen=True)
class SourceState:
    """What we remember about fetching one source."""

    name: str
    kind: str
    validators: Validators = field(default_factory=Validators)
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_status: str | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    next_attempt_after: datetime | None = None
    #: What the source fetched when the validators were saved (see ``validators_for``).
    endpoint: str | None = None
    #: The feed answered with a permanent redirect (301/308) to this address.
    moved_to: str | None = None

    def validators_for(self, endpoint: str) -> Validators:
        """The saved validators, if they were saved for this endpoint."""
        return self.validators if self.endpoint == endpoint else Validators()

    def backing_off(self, now: datetime) -> bool:
        return self.next_attempt_after is not None and now < self.next_attempt_after


@dataclass(frozen=True)
class SourceStats:
    name: str
    kind: str
    items: int
    items_by_kind: dict[str, int]
    state: SourceState | None
    pages: PageCounts = field(default_factory=PageCounts)


@wrapped
class SQLiteStateStore:
    """The default state store: one SQLite file under TRACKER_HOME."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self.schema_version = migrate(self._db, __version__)
        except NewerSchemaError as exc:
            self._db.close()
            raise StorageError(f"cannot use the state store at {self.path}: {exc}") from None
        except (OSError, sqlite3.Error) as exc:
            fix = remedy(exc) if isinstance(exc, sqlite3.Error) else None
            with contextlib.suppress(Exception):
                self._db.close()
            raise StorageError(
                f"cannot open the state store at {self.path} ({exc}); "
                f"{fix or 'set TRACKER_HOME to a folder you can write to'}"
            ) from None

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the other stores that share this database file."""
        return self._db

    def __enter__(self) -> SQLiteStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with wrap_exceptions(self.path, "write"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL does): a second ROLLBACK
                # would fail and hide why; and a failed COMMIT must not leave it open.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    # --- sources ---------------------------------------------------------

    def source_state(self, name: str) -> SourceState | None:
        row = self._db.execute("SELECT * FROM source_state WHERE name = ?", (name,)).fetchone()
        return _state(row) if row else None

    def source_states(self) -> dict[str, SourceState]:
        return {r["name"]: _state(r) for r in self._db.execute("SELECT * FROM source_state")}

    def fingerprints(self, source: str) -> dict[str, str]:
        """Item id -> fingerprint of what is stored, so collectors can skip unchanged work."""
        rows = self._db.execute("SELECT id, fingerprint FROM items WHERE source = ?", (source,))
        return {r["id"]: r["fingerprint"] for r in rows}

    def save_success(
        self,
        source: str,
        kind: str,
        items: Iterable[Item],
        validators: Validators,
        status: str,
        now: datetime,
        endpoint: str | None = None,
        page_changes: PageChanges | None = None,
        moved_to: str | None = None,
    ) -> SaveCounts:
        """Store a source's items, page queue, validators and success in one transaction."""
        new = updated = unchanged = completed = 0
        stamp = to_iso(now)
        with self.transaction() as db:
            before = db.execute(
                "SELECT last_success, endpoint FROM source_state WHERE name = ?", (source,)
            ).fetchone()
            # What a source brings on its first collect is its backlog (see m010), and so is
            # what it brings the first time after the user pointed it somewhere else.
            backlog = int(
                before is None
                or before["last_success"] is None
                or (endpoint is not None and before["endpoint"] not in (None, endpoint))
            )
            seen = list(items)
            for item in seen:
                row = db.execute(
                    "SELECT fingerprint FROM items WHERE source = ? AND id = ?", (source, item.id)
                ).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (source, item.id, *_item_columns(item), stamp, stamp, backlog),
                    )
                    new += 1
                elif row["fingerprint"] != item.version_key:
                    # An article page arriving makes the item whole: not an update upstream,
                    # so its last_changed stays.
                    arrived = row["fingerprint"] + WITH_PAGE == item.version_key
                    db.execute(
                        "UPDATE items SET kind=?, source_kind=?, url=?, title=?, text=?, authors=?,"
                        " published=?, updated=?, extra=?, fingerprint=?,"
                        " last_changed=coalesce(?, last_changed) WHERE source = ? AND id = ?",
                        (*_item_columns(item), None if arrived else stamp, source, item.id),
                    )
                    completed += arrived
                    updated += not arrived
                else:
                    unchanged += 1
            db.executemany(
                "INSERT INTO engagement VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, item_id) "
                "DO UPDATE SET community = excluded.community, votes = excluded.votes, "
                "comments = excluded.comments, seen = excluded.seen",
                [
                    (source, i.id, e.community, e.votes, e.comments, stamp)
                    for i in seen
                    if (e := i.engagement) is not None
                ],
            )
            if page_changes is not None:
                pages.apply(db, source, page_changes)
            db.execute(
                """
                INSERT INTO source_state (name, kind, etag, last_modified, last_attempt,
                    last_success, last_status, consecutive_failures, next_attempt_after, endpoint,
                    moved_to)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)
                ON CONFLICT (name) DO UPDATE SET
                    kind = excluded.kind, etag = excluded.etag, endpoint = excluded.endpoint,
                    last_modified = excluded.last_modified, last_attempt = excluded.last_attempt,
                    last_success = excluded.last_success, last_status = excluded.last_status,
                    consecutive_failures = 0, next_attempt_after = NULL,
                    moved_to = excluded.moved_to
                """,
                (
                    source,
                    kind,
                    validators.etag,
                    validators.last_modified,
                    stamp,
                    stamp,
                    status,
                    endpoint,
                    moved_to,
                ),
            )
        return SaveCounts(new, updated, unchanged, completed)

    def save_failure(
        self,
        source: str,
        kind: str,
        error: str,
        now: datetime,
        retry_at: Callable[[int], datetime],
    ) -> SourceState:
        """Record a failed attempt, one more in a row, and when the source may be tried
        again: ``retry_at(failures in a row)``, the collector's policy, asked inside the
        transaction that counts them so that two writers cannot count the same failure."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT consecutive_failures FROM source_state WHERE name = ?", (source,)
            ).fetchone()
            failures = (row["consecutive_failures"] if row else 0) + 1
            retry = to_iso(retry_at(failures))
            db.execute(
                """
                INSERT INTO source_state (name, kind, last_attempt, last_status,
                    consecutive_failures, last_error, last_error_at, next_attempt_after)
                VALUES (?, ?, ?, 'error', ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET
                    kind = excluded.kind, last_attempt = excluded.last_attempt,
                    last_status = 'error', consecutive_failures = excluded.consecutive_failures,
                    last_error = excluded.last_error, last_error_at = excluded.last_error_at,
                    next_attempt_after = excluded.next_attempt_after
                """,
                (source, kind, to_iso(now), failures, error, to_iso(now), retry),
            )
        state = self.source_state(source)
        if state is None:  # pragma: no cover - written just above
            raise RuntimeError("source state vanished")
        return state

    # --- article pages and hosts ---------------------------------------------

    def page_tasks(self, source: str) -> dict[str, PageTask]:
        """The source's queued article pages, by item id."""
        return pages.tasks(self._db, source)

    def pages_pending(self, source: str) -> int:
        return pages.pending(self._db, source)

    def page_counts(self) -> dict[str, PageCounts]:
        return pages.counts(self._db)

    def host_waits(self, now: datetime) -> list[HostWait]:
        return pages.waits(self._db, now)

    def save_host_waits(
        self, fresh: Iterable[HostWait], cleared: Iterable[str], now: datetime
    ) -> None:
        with self.transaction() as db:
            pages.save_waits(db, fresh, cleared, now)

    # --- items -----------------------------------------------------------

    def teaser_hashes(self, source: str) -> dict[str, str]:
        """Item id -> the hash of the teaser its stored article replaced (see
        ``tracker.collect.sources.feed.with_article``)."""
        rows = self._db.execute(
            "SELECT id, json_extract(extra, '$.teaser_hash') AS h FROM items"
            " WHERE source = ? AND fingerprint LIKE ?",
            (source, "%" + WITH_PAGE),
        )
        return {r["id"]: r["h"] for r in rows if r["h"]}

    def items_by_id(self, source: str, ids: Iterable[str]) -> dict[str, Item]:
        """Stored items of ``source`` with these ids (those that exist)."""
        found: dict[str, Item] = {}
        wanted = list(ids)
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self._db.execute(
                f"SELECT * FROM items WHERE source = ? AND id IN ({marks})", (source, *batch)
            ):
                found[row["id"]] = item_from_row(row)
        return found

    def items(self, source: str | None = None) -> list[Item]:
        query = "SELECT * FROM items"
        args: tuple[Any, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            args = (source,)
        return [item_from_row(r) for r in self._db.execute(query + " ORDER BY source, id", args)]

    def count_items(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM items").fetchone()[0])

    def stats(self) -> list[SourceStats]:
        """Items per source and kind, with each source's fetch state."""
        counts: dict[str, dict[str, int]] = {}
        kinds: dict[str, str] = {}
        for row in self._db.execute(
            "SELECT source, source_kind, kind, count(*) AS n FROM items GROUP BY source, kind"
        ):
            counts.setdefault(row["source"], {})[row["kind"]] = row["n"]
            kinds[row["source"]] = row["source_kind"]
        states = self.source_states()
        queued = self.page_counts()
        names = sorted(set(counts) | set(states))
        return [
            SourceStats(
                name=name,
                kind=states[name].kind if name in states else kinds[name],
                items=sum(counts.get(name, {}).values()),
                items_by_kind=counts.get(name, {}),
                state=states.get(name),
                pages=queued.get(name, PageCounts()),
            )
            for name in names
        ]


def _item_columns(item: Item) -> tuple[Any, ...]:
    return (
        item.kind.value,
        item.source_kind,
        item.url,
        item.title,
        item.text,
        json.dumps(list(item.authors), ensure_ascii=False),
        to_iso(item.published),
        to_iso(item.updated),
        json.dumps(item.extra, ensure_ascii=False, default=str),
        item.version_key,
    )


def item_from_row(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"],
        source=row["source"],
        source_kind=row["source_kind"],
        kind=ItemKind(row["kind"]),
        url=row["url"],
        title=row["title"],
        text=row["text"],
        authors=tuple(json.loads(row["authors"])),
        published=from_iso(row["published"]),
        updated=from_iso(row["updated"]),
        extra=json.loads(row["extra"]),
        fingerprint=row["fingerprint"],
    )


def _state(row: sqlite3.Row) -> SourceState:
    return SourceState(
        name=row["name"],
        kind=row["kind"],
        validators=Validators(row["etag"], row["last_modified"]),
        last_attempt=from_iso(row["last_attempt"]),
        last_success=from_iso(row["last_success"]),
        last_status=row["last_status"],
        consecutive_failures=row["consecutive_failures"],
        last_error=row["last_error"],
        last_error_at=from_iso(row["last_error_at"]),
        next_attempt_after=from_iso(row["next_attempt_after"]),
        endpoint=row["endpoint"],
        moved_to=row["moved_to"],
    )
