"""Numbered schema migrations of the state store, applied in order, all in one transaction.

Append new migrations; never edit one that has shipped. A store is brought forward all at
once or not at all: a crash (or kill -9) half-way leaves it at the version it had, and the
next start migrates it again. A store that a newer tracker migrated is refused, never
used: its meaning is unknown to this version.

``tests/data/homes/`` holds homes made by earlier releases; ``tests/test_upgrade.py``
opens each with today's code (see the README there before changing the schema).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

Migration = tuple[int, str, Callable[[sqlite3.Connection], None]]


def _run(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits first, and a migration must be one transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def m001_initial(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE items (
            source        TEXT NOT NULL,
            id            TEXT NOT NULL,
            kind          TEXT NOT NULL,
            source_kind   TEXT NOT NULL,
            url           TEXT NOT NULL,
            title         TEXT NOT NULL,
            text          TEXT NOT NULL,
            authors       TEXT NOT NULL,   -- JSON list
            published     TEXT,            -- ISO 8601, UTC
            updated       TEXT,
            extra         TEXT NOT NULL,   -- JSON object
            fingerprint   TEXT NOT NULL,
            first_seen    TEXT NOT NULL,
            last_changed  TEXT NOT NULL,
            PRIMARY KEY (source, id)
        );
        CREATE INDEX items_url ON items (url);
        CREATE INDEX items_last_changed ON items (last_changed);

        CREATE TABLE source_state (
            name                  TEXT PRIMARY KEY,
            kind                  TEXT NOT NULL,
            etag                  TEXT,
            last_modified         TEXT,
            last_attempt          TEXT,
            last_success          TEXT,
            last_status           TEXT,
            consecutive_failures  INTEGER NOT NULL DEFAULT 0,
            last_error            TEXT,
            last_error_at         TEXT,
            next_attempt_after    TEXT
        );
        """,
    )


def m002_validators_belong_to_an_endpoint(db: sqlite3.Connection) -> None:
    # Cache validators are only valid for the endpoint that sent them: after the
    # user edits a source's url, the old ETag must not be sent to the new one.
    db.execute("ALTER TABLE source_state ADD COLUMN endpoint TEXT")


def m003_stories(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE stories (
            id              TEXT PRIMARY KEY,
            kind            TEXT NOT NULL,
            title           TEXT NOT NULL,
            url             TEXT NOT NULL,
            first_seen      TEXT NOT NULL,
            last_changed    TEXT NOT NULL,
            published       TEXT,
            updated         INTEGER NOT NULL DEFAULT 0,
            update_note     TEXT,
            vector          BLOB,            -- float32 embedding of the first item
            summary         TEXT,
            summary_method  TEXT,
            summary_model   TEXT,
            summary_due     INTEGER NOT NULL DEFAULT 1,  -- make (or retry) the summary
            summary_error   TEXT
        );
        CREATE INDEX stories_first_seen ON stories (first_seen);
        CREATE TABLE story_members (
            source    TEXT NOT NULL,
            item_id   TEXT NOT NULL,
            story_id  TEXT NOT NULL REFERENCES stories (id),
            added     TEXT NOT NULL,
            PRIMARY KEY (source, item_id)
        );
        CREATE INDEX story_members_story ON story_members (story_id);
        -- Exact identities (canonical URL, arXiv id, release) -> the story that holds them.
        CREATE TABLE story_keys (
            key       TEXT PRIMARY KEY,
            story_id  TEXT NOT NULL REFERENCES stories (id)
        );
        -- Which version of each item the pipeline has processed.
        CREATE TABLE processed (
            source        TEXT NOT NULL,
            item_id       TEXT NOT NULL,
            fingerprint   TEXT NOT NULL,
            processed_at  TEXT NOT NULL,
            PRIMARY KEY (source, item_id)
        );
        -- Embeddings by content hash and model: text is never embedded twice.
        CREATE TABLE embeddings (
            hash    TEXT NOT NULL,
            model   TEXT NOT NULL,
            vector  BLOB NOT NULL,
            PRIMARY KEY (hash, model)
        )
        """,
    )


def m004_retries_and_vector_models(db: sqlite3.Connection) -> None:
    # LLM summaries that failed are retried with backoff, a bounded number of times.
    db.execute("ALTER TABLE stories ADD COLUMN summary_attempts INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE stories ADD COLUMN summary_retry_after TEXT")
    # Which embedder made a story's vector: vectors of two models are never compared.
    db.execute("ALTER TABLE stories ADD COLUMN vector_model TEXT")
    # What the processed version of an item said (title and text), to tell a real edit
    # from a feed that only moved its timestamps.
    db.execute("ALTER TABLE processed ADD COLUMN content_hash TEXT")


def m005_digests(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE digests (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            created      TEXT NOT NULL,
            destination  TEXT NOT NULL
        );
        -- Which stories each digest carried: a story is never sent twice (unless updated).
        CREATE TABLE digest_stories (
            digest_id  INTEGER NOT NULL REFERENCES digests (id),
            story_id   TEXT NOT NULL,
            sent_at    TEXT NOT NULL,
            PRIMARY KEY (digest_id, story_id)
        );
        CREATE INDEX digest_stories_story ON digest_stories (story_id)
        """,
    )


def m006_chunk_texts(db: sqlite3.Connection) -> None:
    # The chunks' text and filters, for the lexical (BM25) half of retrieval; the dense
    # half lives in Chroma. Written in the same step as Chroma's.
    _run(
        db,
        """
        CREATE TABLE chunks (
            id            TEXT PRIMARY KEY,
            item_key      TEXT NOT NULL,
            story_id      TEXT NOT NULL,
            kind          TEXT NOT NULL,
            source        TEXT NOT NULL,
            published_ts  INTEGER,
            title         TEXT NOT NULL,
            url           TEXT NOT NULL,
            text          TEXT NOT NULL
        );
        CREATE INDEX chunks_item ON chunks (item_key)
        """,
    )


def m007_delivery_feedback_notices(db: sqlite3.Connection) -> None:
    # A digest is rendered into an outbox of messages before anything is posted; each
    # message is marked when the destination accepted it, so a partial post resumes
    # where it stopped. A digest counts as sent (``completed``) only when all are posted.
    _run(
        db,
        """
        ALTER TABLE digests ADD COLUMN completed TEXT;
        UPDATE digests SET completed = created;
        CREATE TABLE digest_messages (
            digest_id   INTEGER NOT NULL REFERENCES digests (id),
            idx         INTEGER NOT NULL,
            payload     TEXT NOT NULL,     -- JSON, exactly what is sent
            story_ids   TEXT NOT NULL,     -- JSON list
            message_id  TEXT,              -- set when the destination accepted it
            posted_at   TEXT,
            PRIMARY KEY (digest_id, idx)
        );
        CREATE INDEX digest_messages_message ON digest_messages (message_id);
        -- A reader's vote on a story (from a reaction): one per reader and story.
        CREATE TABLE feedback (
            story_id  TEXT NOT NULL,
            user_id   TEXT NOT NULL,
            vote      INTEGER NOT NULL CHECK (vote IN (-1, 1)),
            at        TEXT NOT NULL,
            PRIMARY KEY (story_id, user_id)
        );
        -- Announcements that are made once (a source starts failing, a bad sources.yaml).
        CREATE TABLE notices (
            key  TEXT PRIMARY KEY,
            at   TEXT NOT NULL
        )
        """,
    )


def m008_refused_and_abandoned_messages(db: sqlite3.Connection) -> None:
    # A message the destination will never accept (Discord answers 400 to it) is set
    # aside with the reason instead of blocking the rest; a digest still undelivered when
    # the next one is due is abandoned, and the next one carries its unsent stories.
    _run(
        db,
        """
        ALTER TABLE digest_messages ADD COLUMN error TEXT;
        ALTER TABLE digests ADD COLUMN abandoned TEXT
        """,
    )


def m009_page_queue_host_waits_moved_feeds(db: sqlite3.Connection) -> None:
    # Article pages become their own queue, so that a feed's conditional GET no longer
    # depends on them and a page that keeps failing is eventually left alone; hosts that
    # answer 429/503 with Retry-After, or refuse page after page, are remembered across
    # runs; a feed that moved for
    # good (301/308) is remembered so that it is reported once and shown in stats.
    _run(
        db,
        """
        CREATE TABLE pages (
            source        TEXT NOT NULL,
            item_id       TEXT NOT NULL,
            url           TEXT NOT NULL,
            attempts      INTEGER NOT NULL DEFAULT 0,
            last_error    TEXT,
            last_attempt  TEXT,
            next_attempt  TEXT,            -- NULL: due now
            gave_up       INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, item_id)
        );
        CREATE TABLE host_waits (
            host        TEXT NOT NULL,
            pages_only  INTEGER NOT NULL,  -- 1: a pause of page requests, not of feeds
            until       TEXT NOT NULL,
            reason      TEXT NOT NULL,
            strikes     INTEGER NOT NULL DEFAULT 0,  -- page pauses in a row
            PRIMARY KEY (host, pages_only)
        );
        ALTER TABLE source_state ADD COLUMN moved_to TEXT
        """,
    )


def m010_backlog_items(db: sqlite3.Connection) -> None:
    # Items a source brought on its first collect are its backlog: without a date of their
    # own they never count as fresh, so following a new feed does not flood the digest.
    db.execute("ALTER TABLE items ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0")


def m011_digest_routes(db: sqlite3.Connection) -> None:
    # Each route keeps its own record of what it sent; every digest before routes existed
    # was the one daily digest, the route named "digest".
    _run(
        db,
        """
        ALTER TABLE digests ADD COLUMN route TEXT NOT NULL DEFAULT 'digest';
        CREATE INDEX digests_route ON digests (route, completed)
        """,
    )


def m012_engagement(db: sqlite3.Connection) -> None:
    # Votes and comments change with every collect and are not the item's content: kept
    # beside it, so that a story gaining points is never "updated by its author".
    _run(
        db,
        """
        CREATE TABLE engagement (
            source     TEXT NOT NULL,
            item_id    TEXT NOT NULL,
            community  TEXT NOT NULL,
            votes      INTEGER NOT NULL,
            comments   INTEGER NOT NULL,
            seen       TEXT NOT NULL,
            PRIMARY KEY (source, item_id)
        )
        """,
    )


def m013_why_members_joined(db: sqlite3.Connection) -> None:
    # Why each item joined its story (the key, or the similarity), so that "why are these
    # one story?" has an answer. Members placed before this say nothing (NULL).
    _run(
        db,
        """
        ALTER TABLE story_members ADD COLUMN reason TEXT;
        ALTER TABLE story_members ADD COLUMN similarity REAL;
        ALTER TABLE story_members ADD COLUMN via_key TEXT
        """,
    )


def m014_which_tracker_migrated(db: sqlite3.Connection) -> None:
    # So that an older tracker that finds a newer schema can say which release made it.
    db.execute("ALTER TABLE schema_migrations ADD COLUMN tracker_version TEXT")


MIGRATIONS: list[Migration] = [
    (1, "initial", m001_initial),
    (2, "validators_belong_to_an_endpoint", m002_validators_belong_to_an_endpoint),
    (3, "stories", m003_stories),
    (4, "retries_and_vector_models", m004_retries_and_vector_models),
    (5, "digests", m005_digests),
    (6, "chunk_texts", m006_chunk_texts),
    (7, "delivery_feedback_notices", m007_delivery_feedback_notices),
    (8, "refused_and_abandoned_messages", m008_refused_and_abandoned_messages),
    (9, "page_queue_host_waits_moved_feeds", m009_page_queue_host_waits_moved_feeds),
    (10, "backlog_items", m010_backlog_items),
    (11, "digest_routes", m011_digest_routes),
    (12, "engagement", m012_engagement),
    (13, "why_members_joined", m013_why_members_joined),
    (14, "which_tracker_migrated", m014_which_tracker_migrated),
]

#: The schema this version of tracker reads and writes.
SCHEMA_VERSION = max(v for v, _, _ in MIGRATIONS)


class NewerSchemaError(Exception):
    """The store was migrated by a newer tracker than this one."""


def migrate(db: sqlite3.Connection, tracker_version: str = "") -> int:
    """Bring the schema up to date in one transaction; returns the version reached.

    ``db`` must be in autocommit mode (``isolation_level=None``), so that the migrations
    are exactly one explicit transaction; ``tracker_version`` is recorded with each step
    applied from migration 14 on (the column it adds).
    Raises ``NewerSchemaError`` (saying both versions) for a store from a newer tracker.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    if _applied(db) >= {v for v, _, _ in MIGRATIONS}:
        _refuse_newer(db, tracker_version)
        return SCHEMA_VERSION
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        _refuse_newer(db, tracker_version)
        applied = _applied(db)
        for version, name, step in MIGRATIONS:
            if version in applied:
                continue
            step(db)
            columns = [r[1] for r in db.execute("PRAGMA table_info(schema_migrations)")]
            row: tuple[object, ...] = (version, name, datetime.now(UTC).isoformat())
            if "tracker_version" in columns:
                row = (*row, tracker_version or None)
            marks = ", ".join("?" for _ in row)
            db.execute(f"INSERT INTO schema_migrations VALUES ({marks})", row)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return SCHEMA_VERSION


def _applied(db: sqlite3.Connection) -> set[int]:
    return {row[0] for row in db.execute("SELECT version FROM schema_migrations")}


def _refuse_newer(db: sqlite3.Connection, tracker_version: str) -> None:
    newest = max(_applied(db), default=0)
    if newest <= SCHEMA_VERSION:
        return
    columns = [r[1] for r in db.execute("PRAGMA table_info(schema_migrations)")]
    made_by = None
    if "tracker_version" in columns:
        row = db.execute(
            "SELECT tracker_version FROM schema_migrations WHERE version = ?", (newest,)
        ).fetchone()
        made_by = row[0] if row else None
    newer = f"tracker {made_by}" if made_by else "a newer tracker"
    this = f"tracker {tracker_version}" if tracker_version else "this tracker"
    raise NewerSchemaError(
        f"it was migrated by {newer} (schema {newest}), and {this} knows schema "
        f"{SCHEMA_VERSION} at most; upgrade tracker, or restore a backup made before the upgrade"
    )
