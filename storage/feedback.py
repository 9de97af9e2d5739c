"""Readers' votes on stories (👍 +1, 👎 -1), one per reader and story, in SQLite.

A reader who changes their mind replaces their vote; one who removes their
reaction withdraws it. Reaction events can arrive out of order (a retried
gateway event, two workers), so a vote only replaces one cast at the same
time or earlier, and a withdrawal only removes such a vote.
"""

from __future__ import annotations

from datetime import datetime

from storage.errors import wrapped
from storage.state import SQLiteStateStore
from tracker.times import to_iso


@wrapped
class SQLiteFeedbackStore:
    """The ``feedback`` table of the state store (migration m007)."""

    def __init__(self, state: SQLiteStateStore):
        self.state = state

    def vote(
        self,
        story_id: str,
        user_id: str,
        vote: int | None,
        now: datetime,
        only: int | None = None,
    ) -> None:
        """Record ``user_id``'s vote on a story: +1, -1, or None to withdraw it (with
        ``only``: withdraw it only if it is that vote, as when one of two thumbs goes)."""
        if vote not in (None, -1, 1):
            raise ValueError(f"a vote is +1, -1 or None, not {vote!r}")
        stamp = to_iso(now)
        with self.state.transaction() as db:
            if vote is None:
                db.execute(
                    "DELETE FROM feedback WHERE story_id = ? AND user_id = ? AND at <= ?"
                    " AND (? IS NULL OR vote = ?)",
                    (story_id, user_id, stamp, only, only),
                )
            else:
                db.execute(
                    "INSERT INTO feedback (story_id, user_id, vote, at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (story_id, user_id) DO UPDATE SET"
                    " vote = excluded.vote, at = excluded.at WHERE excluded.at >= feedback.at",
                    (story_id, user_id, vote, stamp),
                )

    def votes(self) -> dict[str, int]:
        """Story id -> net votes (👍 minus 👎) of every story anyone voted on.

        A story whose votes cancel out is listed with 0.
        """
        rows = self.state.db.execute(
            "SELECT story_id, sum(vote) AS net FROM feedback GROUP BY story_id ORDER BY story_id"
        )
        return {r["story_id"]: int(r["net"]) for r in rows}

    def counts(self, story_id: str) -> dict[str, int]:
        """How many readers voted a story up and down: ``{"up": n, "down": n}``."""
        row = self.state.db.execute(
            "SELECT coalesce(sum(vote = 1), 0) AS up, coalesce(sum(vote = -1), 0) AS down"
            " FROM feedback WHERE story_id = ?",
            (story_id,),
        ).fetchone()
        return {"up": int(row["up"]), "down": int(row["down"])}
