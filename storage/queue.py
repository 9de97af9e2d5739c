"""The processing queue: which items still need chunks, embeddings and a story.

An item is pending until it is marked processed with the fingerprint it had then; an
item changed upstream (a new fingerprint) is pending again. Marking happens only
once its chunks are in the vector store, so a crash in between leaves it pending
and the next run finishes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from storage.errors import wrapped
from storage.state import SQLiteStateStore, item_from_row
from tracker.models import Item
from tracker.times import to_iso, utcnow

#: Items never processed, or changed upstream since they were (one definition for every
#: question asked of the queue).
_PENDING = (
    "FROM items LEFT JOIN processed p ON p.source = items.source AND p.item_id = items.id"
    " WHERE p.fingerprint IS NULL OR p.fingerprint != items.fingerprint"
)


@wrapped
class ProcessingQueue:
    def __init__(
        self,
        state: SQLiteStateStore,
        now: Callable[[], datetime] = utcnow,
        links_last: Sequence[str] = (),
    ):
        """``links_last``: the source kinds whose items are links people shared (see
        ``pending_items``); the kinds say which, storage only orders by it."""
        self.state = state
        self._links_last = tuple(links_last)
        self._db = state.db
        self._now = now

    def pending_items(self, limit: int | None = None) -> list[Item]:
        """Pending items, oldest first.

        Links shared on Hacker News or Reddit come after everything else of the batch: the
        article itself (a blog post that also names its paper) places the story first,
        and the link then joins it by URL, rather than starting a story of its own that
        the article could no longer join.
        """
        marks = ", ".join("?" for _ in self._links_last)
        rows = self._db.execute(
            f"SELECT items.* {_PENDING} ORDER BY items.source_kind IN ({marks}),"
            " items.first_seen, items.source, items.id LIMIT ?",
            (*self._links_last, -1 if limit is None else limit),
        )
        return [item_from_row(r) for r in rows]

    def count_pending(self) -> int:
        return int(self._db.execute(f"SELECT count(*) {_PENDING}").fetchone()[0])

    def has_work(self) -> bool:
        """Whether any item is pending or any story awaits its summary (now)."""
        pending = self._db.execute(f"SELECT 1 {_PENDING} LIMIT 1").fetchone()
        due = self._db.execute(
            "SELECT 1 FROM stories WHERE summary_due = 1 AND (summary_retry_after IS NULL"
            " OR summary_retry_after <= ?) LIMIT 1",
            (to_iso(self._now()),),
        ).fetchone()
        return pending is not None or due is not None

    def processed_content(self, source: str, item_id: str) -> str | None:
        """The content hash of the item as last processed (None: not processed)."""
        row = self._db.execute(
            "SELECT content_hash FROM processed WHERE source = ? AND item_id = ?",
            (source, item_id),
        ).fetchone()
        return row["content_hash"] if row else None

    def mark_processed(
        self, items: Iterable[Item], now: datetime, content_hashes: Iterable[str]
    ) -> None:
        """Record items as processed (their chunks are in the vector store by now)."""
        stamp = to_iso(now)
        with self.state.transaction() as db:
            db.executemany(
                "INSERT INTO processed (source, item_id, fingerprint, processed_at, content_hash)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, item_id) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, processed_at = excluded.processed_at,"
                " content_hash = excluded.content_hash",
                [
                    (i.source, i.id, i.fingerprint, stamp, h)
                    for i, h in zip(items, content_hashes, strict=True)
                ],
            )

    def forget_processing(self) -> None:
        """Make every item pending again (after switching embedders)."""
        with self.state.transaction() as db:
            db.execute("DELETE FROM processed")
