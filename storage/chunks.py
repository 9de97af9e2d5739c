"""Chunk texts with their filters, for lexical (BM25) search beside Chroma's vectors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from storage.errors import wrapped
from storage.state import SQLiteStateStore
from storage.vectors import ChunkRecord
from tracker.models import PUBLISHER_KEYS, byline


@wrapped
class ChunkStore:
    def __init__(self, state: SQLiteStateStore):
        self.state = state
        self._db = state.db

    def replace(self, records: Mapping[str, Sequence[ChunkRecord]]) -> None:
        """The chunks of each item (an updated item may have fewer)."""
        with self.state.transaction() as db:
            for item_key, rows in records.items():
                db.execute("DELETE FROM chunks WHERE item_key = ?", (item_key,))
                db.executemany(
                    "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r.id,
                            item_key,
                            str(r.metadata["story_id"]),
                            str(r.metadata["kind"]),
                            str(r.metadata["source"]),
                            r.metadata.get("published_ts"),
                            str(r.metadata["title"]),
                            str(r.metadata["url"]),
                            r.text,
                        )
                        for r in rows
                    ],
                )

    def rows(self) -> list[dict[str, object]]:
        """Every chunk's id, filters and text, in a stable order (for the BM25 index), and
        its item's ``byline`` (who publishes it: a question may name them)."""
        bylines = self._bylines()
        return [
            {**dict(r), "byline": bylines.get(r["item_key"], "")}
            for r in self._db.execute("SELECT * FROM chunks ORDER BY rowid")
        ]

    def _bylines(self) -> dict[str, str]:
        publishers = ", ".join(f"json_extract(extra, '$.{key}')" for key in PUBLISHER_KEYS)
        out = {}
        for row in self._db.execute(f"SELECT source, id, authors, {publishers} FROM items"):
            source, item_id, authors, *named = tuple(row)
            try:
                people = [str(a) for a in json.loads(authors or "[]") if isinstance(a, str)]
            except ValueError:
                people = []
            out[f"{source}/{item_id}"] = byline([str(n) for n in named if n], people)
        return out

    def version(self) -> tuple[int, int]:
        """Changes whenever chunks are added or replaced: (count, highest rowid)."""
        row = self._db.execute("SELECT count(*) AS n, max(rowid) AS top FROM chunks").fetchone()
        return int(row["n"]), int(row["top"] or 0)
