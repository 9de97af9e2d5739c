"""The digest outbox: a digest's messages, stored before the first is sent.

Posting a digest is not one step: Discord can accept three messages and then
fail. Rendering every message into the outbox first, and marking each one as
the destination accepts it, lets a retry (or a restarted process) send exactly
the messages that are left, never one twice. A story counts as sent when the
message carrying it was accepted; the digest counts as made when all were.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.errors import wrapped
from storage.state import SQLiteStateStore
from tracker.models import DEFAULT_ROUTE
from tracker.times import from_iso, to_iso


@dataclass(frozen=True)
class OutboxMessage:
    digest_id: int
    idx: int
    payload: dict[str, Any]
    story_ids: tuple[str, ...]

    @property
    def key(self) -> str:
        """The message's identity, the same at every try of it."""
        return f"{self.digest_id}/{self.idx}"


@wrapped
class DigestOutbox:
    def __init__(self, state: SQLiteStateStore):
        self.state = state

    def pending(self, destination: str, route: str = DEFAULT_ROUTE) -> int | None:
        """The oldest digest of ``route`` for ``destination`` that still has messages to
        send (one made for another destination, before a bot token was set, stays put)."""
        row = self.state.db.execute(
            "SELECT id FROM digests WHERE destination = ? AND route = ? AND completed IS NULL "
            "AND abandoned IS NULL ORDER BY id LIMIT 1",
            (destination, route),
        ).fetchone()
        return int(row["id"]) if row else None

    def none_made(self, route: str = DEFAULT_ROUTE) -> bool:
        """Whether ``route`` never made a digest for a reader (its first is due); one
        printed by ``tracker digest`` on a terminal does not count."""
        row = self.state.db.execute(
            "SELECT 1 FROM digests WHERE route = ? AND destination NOT LIKE 'terminal:%' LIMIT 1",
            (route,),
        ).fetchone()
        return row is None

    def sent(self, route: str = DEFAULT_ROUTE) -> tuple[dict[str, datetime], datetime | None]:
        """Of one digest route: story id -> when its digest last carried it, and when its
        last digest was made. Routes are independent: a story sent to one is news to
        another that takes it."""
        db = self.state.db
        stories = {
            r["story_id"]: datetime.fromisoformat(r["sent"])
            for r in db.execute(
                "SELECT story_id, max(sent_at) AS sent FROM digest_stories "
                "JOIN digests ON digests.id = digest_stories.digest_id "
                "WHERE digests.route = ? GROUP BY story_id",
                (route,),
            )
        }
        row = db.execute(
            "SELECT max(created) AS last FROM digests WHERE completed IS NOT NULL AND route = ?",
            (route,),
        ).fetchone()
        return stories, from_iso(row["last"]) if row else None

    def created(self, digest_id: int) -> datetime:
        row = self.state.db.execute(
            "SELECT created FROM digests WHERE id = ?", (digest_id,)
        ).fetchone()
        return datetime.fromisoformat(row["created"])

    def abandon(self, digest_id: int, now: datetime) -> None:
        """Give up on an undelivered digest: it no longer blocks the next one, and its
        unsent stories, never recorded as sent, are the next one's to carry."""
        with self.state.transaction() as db:
            db.execute(
                "UPDATE digests SET abandoned = ? WHERE id = ? AND completed IS NULL",
                (to_iso(now), digest_id),
            )

    def create(
        self,
        created: datetime,
        destination: str,
        messages: Sequence[tuple[dict[str, Any], Sequence[str]]],
        route: str = DEFAULT_ROUTE,
    ) -> int:
        """Store a digest's messages, unsent, in one transaction; returns the digest's id."""
        with self.state.transaction() as db:
            cursor = db.execute(
                "INSERT INTO digests (created, destination, route) VALUES (?, ?, ?)",
                (to_iso(created), destination, route),
            )
            digest_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO digest_messages (digest_id, idx, payload, story_ids) "
                "VALUES (?, ?, ?, ?)",
                [
                    (digest_id, idx, json.dumps(payload), json.dumps(list(story_ids)))
                    for idx, (payload, story_ids) in enumerate(messages)
                ],
            )
            if not messages:
                db.execute("UPDATE digests SET completed = created WHERE id = ?", (digest_id,))
        return digest_id

    def remaining(self, digest_id: int) -> list[OutboxMessage]:
        rows = self.state.db.execute(
            "SELECT * FROM digest_messages WHERE digest_id = ? AND message_id IS NULL ORDER BY idx",
            (digest_id,),
        )
        return [
            OutboxMessage(
                digest_id, r["idx"], json.loads(r["payload"]), tuple(json.loads(r["story_ids"]))
            )
            for r in rows
        ]

    def mark_sent(self, message: OutboxMessage, message_id: str, now: datetime) -> bool:
        """Record that the destination accepted ``message``; its stories count as sent.
        Returns True when this was the digest's last message (the digest is complete)."""
        return self._settle(message, now, message_id=message_id)

    def mark_refused(self, message: OutboxMessage, error: str, now: datetime) -> bool:
        """Set aside a message the destination will never accept, with the reason, so the
        rest of the digest goes out; its stories are not counted as sent."""
        return self._settle(message, now, error=error)

    def _settle(
        self,
        message: OutboxMessage,
        now: datetime,
        message_id: str | None = None,
        error: str | None = None,
    ) -> bool:
        with self.state.transaction() as db:
            created = db.execute(
                "SELECT created FROM digests WHERE id = ?", (message.digest_id,)
            ).fetchone()["created"]
            db.execute(
                "UPDATE digest_messages SET message_id = ?, error = ?, posted_at = ? "
                "WHERE digest_id = ? AND idx = ?",
                (message_id, error, to_iso(now), message.digest_id, message.idx),
            )
            if message_id is not None:
                db.executemany(
                    "INSERT OR IGNORE INTO digest_stories (digest_id, story_id, sent_at) "
                    "VALUES (?, ?, ?)",
                    [(message.digest_id, s, created) for s in message.story_ids],
                )
            left = db.execute(
                "SELECT count(*) FROM digest_messages WHERE digest_id = ? "
                "AND message_id IS NULL AND error IS NULL",
                (message.digest_id,),
            ).fetchone()[0]
            if left == 0:
                db.execute(
                    "UPDATE digests SET completed = ? WHERE id = ?",
                    (to_iso(now), message.digest_id),
                )
        return left == 0

    def stories_of_message(self, message_id: str) -> tuple[str, ...]:
        """The stories a posted message carries (empty when it is not a digest message)."""
        row = self.state.db.execute(
            "SELECT story_ids FROM digest_messages WHERE message_id = ?", (message_id,)
        ).fetchone()
        return tuple(json.loads(row["story_ids"])) if row else ()

    def recent_stories(self, limit: int = 50) -> list[str]:
        """Story ids of the most recently posted digest messages, newest first."""
        seen: dict[str, None] = {}
        for row in self.state.db.execute(
            "SELECT story_ids FROM digest_messages WHERE message_id IS NOT NULL "
            "ORDER BY posted_at DESC LIMIT ?",
            (limit,),
        ):
            seen.update(dict.fromkeys(json.loads(row["story_ids"])))
        return list(seen)[:limit]
