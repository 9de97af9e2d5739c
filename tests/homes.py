"""Homes made by earlier releases of tracker (``tests/data/homes/``), and what one holds.

A home is what a user keeps: the state store, Chroma's folder, the digests written, and
the ``sources.yaml`` it was run with. ``census`` counts everything a release must never
lose; ``tests/data/homes/make_home.py`` writes it beside each home it makes, and
``tests/test_upgrade.py`` holds today's code to it.
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HOMES = Path(__file__).parent / "data" / "homes"

#: When the fixture homes were made (their items are six hours older).
MADE_AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)

#: A question the home answers, and the story it must cite first.
QUESTION = "How much faster is decoding with a small draft model?"

#: Rows a later release must keep, by table.
KEPT_TABLES = (
    "items",
    "stories",
    "story_members",
    "story_keys",
    "processed",
    "chunks",
    "embeddings",
    "digests",
    "digest_messages",
    "digest_stories",
    "feedback",
    "engagement",
    "pages",
    "source_state",
    "notices",
)


def census(home: Path) -> dict[str, Any]:
    """What ``home`` holds, as plain data that can be compared across releases."""
    db = sqlite3.connect(f"file:{home / 'state.sqlite3'}?mode=ro", uri=True)
    try:
        rows = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in KEPT_TABLES}
        sent = {
            route: sorted(ids.split(","))
            for route, ids in db.execute(
                "SELECT d.route, group_concat(s.story_id) FROM digest_stories s"
                " JOIN digests d ON d.id = s.digest_id GROUP BY d.route"
            )
        }
        votes = dict(db.execute("SELECT story_id, sum(vote) FROM feedback GROUP BY story_id"))
        backing_off = [
            r[0]
            for r in db.execute(
                "SELECT name FROM source_state WHERE consecutive_failures > 0 ORDER BY name"
            )
        ]
        pending_pages = db.execute("SELECT count(*) FROM pages WHERE gave_up = 0").fetchone()[0]
        chunk_ids = sorted(r[0] for r in db.execute("SELECT id FROM chunks"))
    finally:
        db.close()
    return {
        "rows": rows,
        "sent": sent,
        "votes": votes,
        "backing_off": backing_off,
        "pending_pages": pending_pages,
        "chunk_ids": chunk_ids,
    }


def manifest_of(archive: Path) -> dict[str, Any]:
    """What the maker recorded of the home in ``archive``."""
    return json.loads(archive.with_name(archive.name.removesuffix(".tar.gz") + ".json").read_text())


def unpack(archive: Path, home: Path) -> Path:
    """The home in ``archive``, unpacked into ``home`` (a copy the test may change)."""
    home.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(home, filter="data")
    return home


def fixture_homes() -> list[Path]:
    return sorted(HOMES.glob("*.tar.gz"))
