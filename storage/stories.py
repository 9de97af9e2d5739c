"""Stories, their members and keys, processing marks and cached embeddings, in SQLite.

Shares the state store's database file and connection: one item's story
assignment, keys and processed mark are written in one transaction, so a
crash mid-run leaves every item either processed or still pending.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from storage.embedding_cache import from_blob, to_blob
from storage.errors import wrapped
from storage.state import SQLiteStateStore
from tracker.models import (
    Candidate,
    Engagement,
    Item,
    ItemKind,
    Match,
    Plan,
    Story,
    StoryMember,
    identities,
)
from tracker.times import from_iso, to_iso

#: A story whose LLM summary failed this many times keeps its extractive summary.
MAX_SUMMARY_ATTEMPTS = 6


@dataclass(frozen=True)
class Placement:
    """Where the pipeline put one item."""

    story_id: str
    new_story: bool
    update_note: str | None = None


@dataclass(frozen=True)
class SummaryJob:
    story_id: str
    kind: ItemKind
    title: str
    text: str
    source: str
    url: str


@wrapped
class SQLiteStoryStore:
    def __init__(self, state: SQLiteStateStore):
        self.state = state
        self._db = state.db

    # --- story lookup ----------------------------------------------------------

    def story_of(self, source: str, item_id: str) -> str | None:
        row = self._db.execute(
            "SELECT story_id FROM story_members WHERE source = ? AND item_id = ?", (source, item_id)
        ).fetchone()
        return row["story_id"] if row else None

    def key_index(self, keys: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        """Key -> (story, the story's last change) for those keys that are taken."""
        index: dict[str, tuple[str, datetime]] = {}
        for key in keys:
            row = self._db.execute(
                "SELECT k.story_id, s.last_changed FROM story_keys k JOIN stories s"
                " ON s.id = k.story_id WHERE k.key = ?",
                (key,),
            ).fetchone()
            if row:
                index[key] = (row["story_id"], datetime.fromisoformat(row["last_changed"]))
        return index

    def candidates(self, since: datetime, model: str) -> list[Candidate]:
        rows = self._db.execute(
            "SELECT s.id, s.vector, s.first_seen, group_concat(k.key, char(10)) AS keys"
            " FROM stories s LEFT JOIN story_keys k ON k.story_id = s.id"
            " AND (k.key LIKE 'arxiv:%' OR k.key LIKE 'release:%')"
            " WHERE s.vector IS NOT NULL AND s.vector_model = ? AND s.first_seen >= ?"
            " GROUP BY s.id",
            (model, to_iso(since)),
        )
        return [
            Candidate(
                r["id"],
                from_blob(r["vector"]),
                datetime.fromisoformat(r["first_seen"]),
                identities((r["keys"] or "").split("\n")),
            )
            for r in rows
        ]

    def paper_version(self, story_id: str) -> int | None:
        """The highest arXiv version among the story's papers."""
        versions = [
            json.loads(r["extra"]).get("version")
            for r in self._db.execute(
                "SELECT i.extra FROM story_members m JOIN items i"
                " ON i.source = m.source AND i.id = m.item_id"
                " WHERE m.story_id = ? AND i.kind = 'paper'",
                (story_id,),
            )
        ]
        ints = [v for v in versions if isinstance(v, int)]
        return max(ints) if ints else None

    # --- writing -----------------------------------------------------------------

    def story_kind(self, story_id: str) -> ItemKind | None:
        row = self._db.execute("SELECT kind FROM stories WHERE id = ?", (story_id,)).fetchone()
        return ItemKind(row["kind"]) if row else None

    def place(
        self,
        item: Item,
        plan: Plan,
        keys: Iterable[str],
        vector: np.ndarray | None,
        now: datetime,
        weak_keys: Iterable[str] = (),
        vector_model: str | None = None,
    ) -> Placement:
        """Apply ``plan`` (``tracker.understand.stories.plan``): put the item in its story (a
        new one when the plan names none) with its keys, and why it went there."""
        stamp = to_iso(now)
        story_id = plan.story_id
        update_note = plan.update_note
        new_story = story_id is None
        with self.state.transaction() as db:
            if story_id is None:
                story_id = "s_" + uuid.uuid4().hex[:16]
                db.execute(
                    "INSERT INTO stories (id, kind, title, url, first_seen, last_changed,"
                    " published, vector, vector_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        story_id,
                        item.kind.value,
                        item.title,
                        item.url,
                        stamp,
                        stamp,
                        to_iso(item.published),
                        to_blob(vector) if vector is not None else None,
                        vector_model if vector is not None else None,
                    ),
                )
            elif plan.take_over:
                db.execute(
                    "UPDATE stories SET kind = ?, title = ?, url = ?, summary_due = 1,"
                    " published = CASE WHEN ? THEN ? ELSE published END WHERE id = ?",
                    (
                        item.kind.value,
                        item.title,
                        item.url,
                        update_note is not None,  # a new release: its date is the story's
                        to_iso(item.published),
                        story_id,
                    ),
                )
            if not new_story and update_note:
                db.execute(
                    "UPDATE stories SET updated = 1, update_note = ?, last_changed = ?,"
                    " summary_due = 1 WHERE id = ?",
                    (update_note, stamp, story_id),
                )
            match = plan.match
            db.execute(
                "INSERT INTO story_members (source, item_id, story_id, added, reason, similarity,"
                " via_key) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, item_id) DO NOTHING",
                (
                    item.source,
                    item.id,
                    story_id,
                    stamp,
                    match.reason if not new_story else "new",
                    match.similarity,
                    match.key,
                ),
            )
            db.executemany(
                "INSERT INTO story_keys (key, story_id) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                [(k, story_id) for k in keys],
            )
            # A weak key (a tool's line of releases) follows the tool's latest story.
            db.executemany(
                "INSERT INTO story_keys (key, story_id) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET story_id = excluded.story_id",
                [(k, story_id) for k in weak_keys],
            )
            if vector is not None and vector_model is not None:
                # A story without a vector of the current model (after --reembed) takes
                # the first one it is given again.
                db.execute(
                    "UPDATE stories SET vector = ?, vector_model = ? WHERE id = ?"
                    " AND (vector_model IS NULL OR vector_model != ? OR ?)",
                    (to_blob(vector), vector_model, story_id, vector_model, new_story),
                )
        return Placement(story_id, new_story, update_note)

    # --- summaries -----------------------------------------------------------------

    def summary_jobs(self, now: datetime, only: Iterable[str] | None = None) -> list[SummaryJob]:
        """Stories that need a summary: new, updated, or an LLM retry whose time has come.

        ``only`` limits the jobs to those stories. The text summarised is the newest
        member's for an updated story (what changed) and the longest otherwise.
        """
        wanted = set(only) if only is not None else None
        jobs = []
        rows = self._db.execute(
            "SELECT id, kind, updated FROM stories WHERE summary_due = 1"
            " AND (summary_retry_after IS NULL OR summary_retry_after <= ?)",
            (to_iso(now),),
        )
        for story in rows:
            if wanted is not None and story["id"] not in wanted:
                continue
            order = "m.rowid DESC" if story["updated"] else "length(i.text) DESC"
            member = self._db.execute(
                "SELECT i.* FROM story_members m JOIN items i"
                " ON i.source = m.source AND i.id = m.item_id WHERE m.story_id = ?"
                f" ORDER BY {order} LIMIT 1",
                (story["id"],),
            ).fetchone()
            if member is None:
                continue
            jobs.append(
                SummaryJob(
                    story_id=story["id"],
                    kind=ItemKind(story["kind"]),
                    title=member["title"],
                    text=member["text"],
                    source=member["source"],
                    url=member["url"],
                )
            )
        return jobs

    def save_summary(
        self,
        story_id: str,
        text: str,
        method: str,
        model: str | None,
        retry_reason: str | None,
        now: datetime,
    ) -> None:
        """Store a summary. With ``retry_reason`` it is a fallback: the LLM is tried again
        after a backoff (30 min, 1 h, 2 h, ... a day), at most MAX_SUMMARY_ATTEMPTS times."""
        with self.state.transaction() as db:
            row = db.execute(
                "SELECT summary_attempts FROM stories WHERE id = ?", (story_id,)
            ).fetchone()
            attempts = (row["summary_attempts"] if row else 0) + 1 if retry_reason else 0
            due = bool(retry_reason) and attempts < MAX_SUMMARY_ATTEMPTS
            delay = min(timedelta(days=1), timedelta(minutes=30) * 2 ** max(0, attempts - 1))
            db.execute(
                "UPDATE stories SET summary = ?, summary_method = ?, summary_model = ?,"
                " summary_due = ?, summary_error = ?, summary_attempts = ?,"
                " summary_retry_after = ? WHERE id = ?",
                (
                    text,
                    method,
                    model,
                    1 if due else 0,
                    retry_reason,
                    attempts,
                    to_iso(now + delay) if due else None,
                    story_id,
                ),
            )

    # --- reading ---------------------------------------------------------------------

    def stories(self, since: datetime | None = None) -> list[Story]:
        query = "SELECT * FROM stories"
        args: tuple[str, ...] = ()
        if since is not None:
            query += " WHERE last_changed >= ?"
            args = (to_iso(since) or "",)
        stories = []
        for row in self._db.execute(query + " ORDER BY first_seen", args):
            stories.append(self._story(row))
        return stories

    def titled(self, words: Sequence[str], n: int) -> list[Story]:
        """The ``n`` most recently changed stories whose title holds every word (any case)."""
        if not words:
            return []
        where = " AND ".join("lower(title) LIKE ?" for _ in words)
        rows = self._db.execute(
            f"SELECT id FROM stories WHERE {where} ORDER BY last_changed DESC LIMIT ?",
            (*[f"%{w.lower()}%" for w in words], n),
        )
        stories = [self.story(r["id"]) for r in rows]
        return [s for s in stories if s is not None]

    def story(self, story_id: str) -> Story | None:
        row = self._db.execute("SELECT * FROM stories WHERE id = ?", (story_id,)).fetchone()
        return self._story(row) if row else None

    def vectors(self, story_ids: Sequence[str], model: str) -> dict[str, np.ndarray]:
        """Story vectors made by ``model`` (others are not comparable with its vectors)."""
        out = {}
        for story_id in story_ids:
            row = self._db.execute(
                "SELECT vector FROM stories WHERE id = ? AND vector_model = ?", (story_id, model)
            ).fetchone()
            if row and row["vector"] is not None:
                out[story_id] = from_blob(row["vector"])
        return out

    def _story(self, row: object) -> Story:
        r: dict = dict(row)  # type: ignore[call-overload]
        members = tuple(
            StoryMember(
                source=m["source"],
                item_id=m["item_id"],
                url=m["url"],
                title=m["title"],
                kind=ItemKind(m["kind"]),
                added=datetime.fromisoformat(m["added"]),
                dated=_member_date(m),
                discussion=json.loads(m["extra"]).get("discussion"),
                joined=Plan(Match(r["id"], m["reason"], m["similarity"], m["via_key"])).why
                if m["reason"]
                else None,
                engagement=(
                    Engagement(m["community"], m["votes"], m["comments"])
                    if m["community"] is not None
                    else None
                ),
            )
            for m in self._db.execute(
                "SELECT m.source, m.item_id, m.added, m.reason, m.similarity, m.via_key, i.url,"
                " i.title, i.kind, i.published,"
                " i.updated, i.first_seen, i.last_changed, i.backlog, i.extra, e.community,"
                " e.votes, e.comments FROM story_members m"
                " JOIN items i ON i.source = m.source AND i.id = m.item_id"
                " LEFT JOIN engagement e ON e.source = m.source AND e.item_id = m.item_id"
                " WHERE m.story_id = ? ORDER BY m.rowid",
                (r["id"],),
            )
        )
        return Story(
            id=r["id"],
            kind=ItemKind(r["kind"]),
            title=r["title"],
            url=r["url"],
            first_seen=datetime.fromisoformat(r["first_seen"]),
            last_changed=datetime.fromisoformat(r["last_changed"]),
            published=from_iso(r["published"]),
            members=members,
            updated=bool(r["updated"]),
            update_note=r["update_note"],
            summary=r["summary"],
            summary_method=r["summary_method"],
        )


def _member_date(row: Any) -> datetime | None:
    """An item's newest own date; when it has none, when it was collected, unless it came
    with its source's first collect (backlog, which is never news)."""
    dates = [d for d in (from_iso(row["published"]), from_iso(row["updated"])) if d is not None]
    if dates:
        # A date in the future (a wrong year, an event's date) is no fresher than the
        # last time the item changed.
        seen = from_iso(row["last_changed"])
        return min(max(dates), seen) if seen else max(dates)
    return None if row["backlog"] else from_iso(row["first_seen"])
