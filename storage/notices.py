"""Announcements already made, so that each is made once, across restarts too."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.errors import wrapped
from storage.state import SQLiteStateStore


@wrapped
class NoticeStore:
    def __init__(self, state: SQLiteStateStore):
        self.state = state

    def keys(self) -> set[str]:
        return {r["key"] for r in self.state.db.execute("SELECT key FROM notices")}

    def add(self, key: str, now: datetime) -> None:
        with self.state.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO notices (key, at) VALUES (?, ?)",
                (key, now.astimezone(UTC).isoformat()),
            )

    def remove(self, key: str) -> None:
        with self.state.transaction() as db:
            db.execute("DELETE FROM notices WHERE key = ?", (key,))
