"""A home made by an earlier release opens, migrates and keeps working with today's code.

Each home in ``tests/data/homes/`` was made by ``make_home.py`` with the release named in
its file name; nothing in it may be lost, and nothing it already sent may be sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from storage.migrations import SCHEMA_VERSION
from storage.outbox import DigestOutbox
from storage.state import SQLiteStateStore
from tests.homes import MADE_AT, census, fixture_homes, manifest_of, unpack
from tracker import __version__
from tracker.app import open_tracker
from tracker.cli import main
from tracker.config import load_config
from tracker.errors import StorageError
from tracker.runtime import Runtime
from tracker.settings import Settings

HOMES = fixture_homes()


@pytest.fixture(params=HOMES, ids=[h.name.removesuffix(".tar.gz") for h in HOMES])
def old_home(request, tracker_home: Path, monkeypatch) -> tuple[Settings, dict]:
    """A copy of a committed home as the user's, and what its release recorded of it."""
    unpack(request.param, tracker_home)
    monkeypatch.setenv("TRACKER_SOURCES", str(tracker_home / "sources.yaml"))
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACKER_SUMMARY_MODEL"):
        monkeypatch.delenv(key, raising=False)
    return Settings.from_env(), manifest_of(request.param)


def printed(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return json.loads(out.getvalue())


def test_there_is_a_home_of_todays_schema():
    assert any(manifest_of(h)["schema"] == SCHEMA_VERSION for h in HOMES), (
        "the schema changed: add a home of this version with tests/data/homes/make_home.py"
    )


def test_an_old_home_migrates_and_loses_nothing(old_home):
    settings, made = old_home
    with SQLiteStateStore(settings.state_db) as store:
        assert store.schema_version == SCHEMA_VERSION
    now = census(settings.home)
    before = made["census"]
    for table, rows in before["rows"].items():
        assert now["rows"][table] >= rows, f"{table}: {rows} rows before, {now['rows'][table]} now"
    assert now["sent"] == before["sent"]
    assert now["votes"] == before["votes"]
    assert now["backing_off"] == before["backing_off"]
    assert now["pending_pages"] == before["pending_pages"]
    with open_tracker(settings) as tracker:
        assert tracker.vectors.ids() == set(before["chunk_ids"]) == set(now["chunk_ids"])


def test_an_old_home_answers_and_reports_as_it_did(old_home):
    _, made = old_home
    assert printed(["stats", "--json"]) == made["stats"]
    answer = printed(["ask", made["question"], "--json"])
    then = made["ask"]["citations"][0]
    cited = answer["citations"][0]
    # The same story cited first. Which of its members (the paper, a post about it) is
    # quoted may change with how answers are made; that the store answers as it did may not.
    assert answer["found"] and cited["story_id"] == then["story_id"], answer


def test_serving_an_old_home_sends_nothing_it_already_sent(old_home):
    settings, made = old_home
    sent = made["census"]["sent"]
    runtime = Runtime(settings, load_config(settings.sources_path), now=lambda: next_day)
    next_day = MADE_AT + timedelta(days=1)

    async def serve_a_day() -> None:
        try:
            await runtime.digests.all_digests()
        finally:
            await runtime.stop()

    with SQLiteStateStore(settings.state_db) as store:
        assert not any(DigestOutbox(store).none_made(route) for route in sent)
        before = {r[0] for r in store.db.execute("SELECT id FROM digests")}
    asyncio.run(serve_a_day())
    with SQLiteStateStore(settings.state_db) as store:
        new = store.db.execute(
            "SELECT d.route, m.story_ids, m.payload FROM digests d"
            " JOIN digest_messages m ON m.digest_id = d.id"
            f" WHERE d.id NOT IN ({','.join('?' * len(before))})",
            tuple(before),
        ).fetchall()
    assert new, "the next day's digests were made"
    for route, story_ids, payload in new:
        assert not set(json.loads(story_ids)) & set(sent[route]), f"{route} sent a story again"
        assert "first digest" not in payload


KILLED_MID_MIGRATION = """
import os, signal, sqlite3, sys
import storage.migrations as m
path, upto = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path, isolation_level=None)
if upto:
    m.MIGRATIONS[:] = m.MIGRATIONS[:upto]
    m.SCHEMA_VERSION = upto
    m.migrate(db)
    db.execute("INSERT INTO items VALUES ('blog', 'p1', 'post', 'feed', 'https://b.example/p1',"
               " 'A post', '', '[]', NULL, NULL, '{}', 'f1', '2026-01-01', '2026-01-01', 0)")
else:
    def killed(db):
        os.kill(os.getpid(), signal.SIGKILL)
    m.MIGRATIONS.append((m.SCHEMA_VERSION + 1, "killed_half_way", killed))
    m.SCHEMA_VERSION += 1
    m.migrate(db)
"""


def test_a_migration_killed_half_way_leaves_the_old_version_and_the_next_start_migrates(
    tmp_path: Path,
):
    path = tmp_path / "state.sqlite3"
    run = [sys.executable, "-c", KILLED_MID_MIGRATION, str(path)]
    subprocess.run([*run, "10"], check=True, cwd=Path(__file__).parents[1])
    killed = subprocess.run([*run, "0"], cwd=Path(__file__).parents[1])
    assert killed.returncode == -9

    db = sqlite3.connect(path)
    assert max(r[0] for r in db.execute("SELECT version FROM schema_migrations")) == 10
    columns = {r[1] for r in db.execute("PRAGMA table_info(digests)")}
    assert "route" not in columns, "migration 11 was undone with the rest"
    db.close()
    with SQLiteStateStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [i.id for i in store.items("blog")] == ["p1"]


def test_a_home_from_a_newer_tracker_is_refused_naming_both_versions(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    SQLiteStateStore(path).close()
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO schema_migrations VALUES (?, 'from_the_future', '2027-06-01', '0.9.0')",
        (SCHEMA_VERSION + 5,),
    )
    db.commit()
    db.close()
    with pytest.raises(StorageError) as refused:
        SQLiteStateStore(path)
    said = str(refused.value)
    assert f"tracker 0.9.0 (schema {SCHEMA_VERSION + 5})" in said
    assert f"tracker {__version__} knows schema {SCHEMA_VERSION}" in said
    assert "restore a backup" in said
