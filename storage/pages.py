"""The article-page queue and the hosts' Retry-After waits, in the state store.

Page state is written in the same transaction as its source's items (see
``SQLiteStateStore.save_success``), so a crash loses a source's pages and items
together and a re-run neither fetches a page twice nor forgets one.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tracker.models import HostWait, PageChanges, PageTask, short_reason
from tracker.times import from_iso, to_iso


@dataclass(frozen=True)
class PageCounts:
    """A source's queue at a glance, for ``tracker stats`` and the collect line."""

    pending: int = 0
    gave_up: int = 0
    #: The most common last error among the given-up pages, with how many share it.
    gave_up_reasons: list[tuple[str, int]] = field(default_factory=list)


def tasks(db: sqlite3.Connection, source: str) -> dict[str, PageTask]:
    rows = db.execute(
        "SELECT item_id, url, attempts, last_error, last_attempt, next_attempt, gave_up"
        " FROM pages WHERE source = ?",
        (source,),
    )
    return {
        r["item_id"]: PageTask(
            item_id=r["item_id"],
            url=r["url"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            last_attempt=from_iso(r["last_attempt"]),
            next_attempt=from_iso(r["next_attempt"]),
            gave_up=bool(r["gave_up"]),
        )
        for r in rows
    }


def apply(db: sqlite3.Connection, source: str, changes: PageChanges) -> None:
    """Write ``changes`` (inside the caller's transaction)."""
    for item_id in changes.remove:
        db.execute("DELETE FROM pages WHERE source = ? AND item_id = ?", (source, item_id))
    for t in changes.upsert:
        db.execute(
            """
            INSERT INTO pages (source, item_id, url, attempts, last_error, last_attempt,
                next_attempt, gave_up)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (source, item_id) DO UPDATE SET
                url = excluded.url, attempts = excluded.attempts,
                last_error = excluded.last_error, last_attempt = excluded.last_attempt,
                next_attempt = excluded.next_attempt, gave_up = excluded.gave_up
            """,
            (
                source,
                t.item_id,
                t.url,
                t.attempts,
                t.last_error,
                to_iso(t.last_attempt),
                to_iso(t.next_attempt),
                int(t.gave_up),
            ),
        )


def pending(db: sqlite3.Connection, source: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM pages WHERE source = ? AND gave_up = 0", (source,)
    ).fetchone()
    return int(row[0])


def counts(db: sqlite3.Connection) -> dict[str, PageCounts]:
    """Pending and given-up pages per source."""
    totals: dict[str, list[int]] = {}
    for r in db.execute(
        "SELECT source, gave_up, count(*) AS n FROM pages GROUP BY source, gave_up"
    ):
        totals.setdefault(r["source"], [0, 0])[1 if r["gave_up"] else 0] = r["n"]
    reasons: dict[str, Counter[str]] = {}
    for r in db.execute("SELECT source, last_error FROM pages WHERE gave_up = 1"):
        reasons.setdefault(r["source"], Counter())[short_reason(r["last_error"] or "")] += 1
    return {
        source: PageCounts(
            pending,
            gave_up,
            sorted(reasons.get(source, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))[:3],
        )
        for source, (pending, gave_up) in totals.items()
    }


#: A host's page pause is remembered this long after it ran out, for its strikes.
STRIKE_MEMORY = timedelta(days=7)


def waits(db: sqlite3.Connection, now: datetime) -> list[HostWait]:
    """The hosts' waits in force at ``now``, and page pauses that ran out lately (their
    strikes still count)."""
    rows = db.execute(
        "SELECT host, until, reason, pages_only, strikes FROM host_waits"
        " WHERE until > ? OR (pages_only = 1 AND until > ?)",
        (to_iso(now), to_iso(now - STRIKE_MEMORY)),
    )
    return [
        HostWait(
            r["host"],
            datetime.fromisoformat(r["until"]),
            r["reason"],
            bool(r["pages_only"]),
            r["strikes"],
        )
        for r in rows
    ]


def save_waits(
    db: sqlite3.Connection, fresh: Iterable[HostWait], cleared: Iterable[str], now: datetime
) -> None:
    db.execute(
        "DELETE FROM host_waits WHERE (pages_only = 0 AND until <= ?) OR until <= ?",
        (to_iso(now), to_iso(now - STRIKE_MEMORY)),
    )
    for host in cleared:
        db.execute("DELETE FROM host_waits WHERE host = ? AND pages_only = 1", (host,))
    for w in fresh:
        db.execute(
            "INSERT INTO host_waits (host, pages_only, until, reason, strikes)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (host, pages_only) DO UPDATE SET"
            " until = excluded.until, reason = excluded.reason, strikes = excluded.strikes",
            (w.host, int(w.pages_only), to_iso(w.until), w.reason, w.strikes),
        )
