"""``tracker backup`` copies a home while it works, and ``tracker restore`` puts it back: the
copy opens, passes SQLite's integrity check, its items, stories, chunks and vectors agree,
and a restored home sends nothing it already sent."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.backup import using_home
from storage.state import SQLiteStateStore
from tests.conftest import FeedServer
from tracker.cli import main
from tracker.config import load_config
from tracker.runtime import Runtime
from tracker.runtime.lock import InstanceLock
from tracker.settings import Settings

MONDAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)


def agrees_with_itself(copy: Path) -> dict[str, int]:
    """A backup's stores checked against each other; their sizes."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    db = sqlite3.connect(copy / "state.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    orphans = db.execute(
        "SELECT count(*) FROM story_members m LEFT JOIN items i"
        " ON i.source = m.source AND i.id = m.item_id LEFT JOIN stories s ON s.id = m.story_id"
        " WHERE i.id IS NULL OR s.id IS NULL"
    ).fetchone()[0]
    assert orphans == 0, "every member is a stored item of a stored story"
    loose = db.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN stories s ON s.id = c.story_id WHERE s.id IS NULL"
    ).fetchone()[0]
    assert loose == 0, "every chunk belongs to a stored story"
    chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks")}
    items = db.execute("SELECT count(*) FROM items").fetchone()[0]
    db.close()
    vector_ids: set[str] = set()
    if (copy / "chroma").is_dir():
        client = chromadb.PersistentClient(
            str(copy / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
        )
        names = {c.name for c in client.list_collections()}
        if "chunks" in names:
            vector_ids = set(client.get_collection("chunks").get(include=[])["ids"])
    assert vector_ids == chunk_ids, "the vectors are those of the chunks, no more, no less"
    return {"items": items, "chunks": len(chunk_ids)}


def test_a_backup_taken_again_and_again_during_a_collect_is_consistent_every_time(
    world: FeedServer, tmp_path: Path
):
    release = threading.Event()
    world.routes["/releases.atom"].hold = release  # the collect waits here a while
    done = threading.Event()
    results: list[int] = []

    def collect() -> None:
        try:
            results.append(main(["collect"]))
        finally:
            done.set()

    worker = threading.Thread(target=collect)
    worker.start()
    state = Settings.from_env().state_db
    sizes = []
    try:
        while not done.is_set():
            if state.exists():
                copy = tmp_path / f"backup-{len(sizes)}"
                assert main(["backup", str(copy)]) == 0
                sizes.append(agrees_with_itself(copy))
                release.set()  # one copy taken before the releases came: now let them
            done.wait(0.02)
    finally:
        release.set()
        worker.join(30)
    assert results == [0]
    final = tmp_path / "final"
    assert main(["backup", str(final)]) == 0
    whole = agrees_with_itself(final)
    assert whole["chunks"] >= 4
    assert any(s["items"] < whole["items"] for s in sizes), "a copy was taken mid-collect"


def serving(settings: Settings, clock: datetime) -> Runtime:
    return Runtime(settings, load_config(settings.sources_path), now=lambda: clock)


def test_a_backup_during_serve_restores_into_an_empty_home_that_sends_nothing_again(
    world: FeedServer, tmp_path: Path, monkeypatch, capsys
):
    settings = Settings.from_env()
    runtime = serving(settings, MONDAY)
    copies: list[Path] = []

    async def a_morning() -> None:
        try:
            collecting = asyncio.create_task(runtime.collect_all())
            while not collecting.done():  # backups while serve collects and processes
                copy = tmp_path / f"during-{len(copies)}"
                if settings.state_db.exists():
                    assert await asyncio.to_thread(main, ["backup", str(copy)]) == 0
                    copies.append(copy)
                await asyncio.sleep(0.05)
            await collecting
            first = await runtime.digests.digest_job()
            assert first is not None and first.complete
            assert await asyncio.to_thread(main, ["backup", str(tmp_path / "after")]) == 0
        finally:
            await runtime.stop()

    asyncio.run(a_morning())
    for copy in copies:
        agrees_with_itself(copy)
    assert copies, "a backup was taken while serve collected"
    capsys.readouterr()

    home = tmp_path / "restored"
    monkeypatch.setenv("TRACKER_HOME", str(home))
    assert main(["restore", str(tmp_path / "after")]) == 0
    said = capsys.readouterr().out
    assert f"Restored {tmp_path / 'after'} into {home}" in said and "state store" in said
    restored = Settings.from_env()
    with SQLiteStateStore(restored.state_db) as store:
        before = store.db.execute("SELECT count(*) FROM digests").fetchone()[0]
    again = serving(restored, MONDAY + timedelta(minutes=30))

    async def restart() -> None:
        try:
            assert await again.digests.digest_job() is None  # today's was made and sent
        finally:
            await again.stop()

    asyncio.run(restart())
    with SQLiteStateStore(restored.state_db) as store:
        assert store.db.execute("SELECT count(*) FROM digests").fetchone()[0] == before


def test_restore_refuses_a_home_in_use_and_backup_a_folder_in_use(
    world: FeedServer, tmp_path: Path, capsys
):
    assert main(["collect"]) == 0
    assert main(["backup", str(tmp_path / "b")]) == 0
    capsys.readouterr()

    assert main(["backup", str(tmp_path / "b")]) == 2
    assert "not an empty folder" in capsys.readouterr().err

    assert main(["restore", str(tmp_path / "b")]) == 2
    assert "already holds a tracker home" in capsys.readouterr().err

    settings = Settings.from_env()
    with InstanceLock(settings.lock_path):  # tracker serve is running
        assert main(["restore", "--force", str(tmp_path / "b")]) == 1
    assert "Another tracker serve is already running" in capsys.readouterr().err

    with using_home(settings.home):  # a tracker collect from cron is running
        assert main(["restore", "--force", str(tmp_path / "b")]) == 2
    assert "another tracker command is working on" in capsys.readouterr().err

    assert main(["restore", "--force", str(tmp_path / "b")]) == 0
    agrees_with_itself(settings.home)


def test_restore_of_what_is_not_a_backup_says_so(tmp_path: Path, capsys):
    (tmp_path / "photos").mkdir()
    assert main(["restore", str(tmp_path / "photos")]) == 2
    assert "is not a tracker backup" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("size", "said"),
    [(0, "0 bytes"), (1023, "1,023 bytes"), (1024, "1.0 KB"), (5 * 1024 * 1024, "5.0 MB")],
)
def test_sizes_are_said_for_people(size, said):
    from tracker.cli.backup import _size

    assert _size(size) == said


HOLDER = """
import sys, time
from pathlib import Path
from storage.backup import writes_held
print("trying", flush=True)
with writes_held(Path(sys.argv[1])):
    print("held", flush=True)
"""


def test_the_vectors_write_lock_holds_between_processes(tmp_path: Path):
    import subprocess
    import sys
    import time

    from storage.backup import writes_held

    folder = tmp_path / "chroma"
    root = Path(__file__).parents[1]
    with writes_held(folder):
        other = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder)], cwd=root, stdout=subprocess.PIPE, text=True
        )
        assert other.stdout is not None and other.stdout.readline().strip() == "trying"
        time.sleep(0.5)  # a free lock is taken in microseconds
        assert other.poll() is None, "the other process got the lock while this one held it"
    out, _ = other.communicate(timeout=30)
    assert out.strip() == "held"


class Serving:
    """``tracker serve`` in its own process, its log read as it comes."""

    def __init__(self, env: dict[str, str]):
        import subprocess

        from tests.conftest import TRACKER_COMMAND

        self.lines: list[str] = []
        self.caught_up = threading.Event()
        self.process = subprocess.Popen(
            [TRACKER_COMMAND, "serve"],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if 'msg="caught up' in line:
                self.caught_up.set()

    def until_caught_up(self) -> None:
        assert self.caught_up.wait(180), "".join(self.lines)

    def stop(self) -> str:
        import signal

        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(60) == 0, "".join(self.lines)
        return "".join(self.lines)


def test_a_home_backed_up_while_tracker_serve_runs_restores_and_serves_without_resending(
    world: FeedServer, tracker_home: Path, tmp_path: Path
):
    import os
    import subprocess

    from tests.conftest import TRACKER_COMMAND

    sources = Path(os.environ["TRACKER_SOURCES"])
    sources.write_text(
        sources.read_text(encoding="utf-8")
        + f'digest: {{time: "{datetime.now(UTC) + timedelta(hours=6):%H:%M}", timezone: UTC}}\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    serving = Serving(env)
    try:
        serving.until_caught_up()  # the first digest is made and delivered at once
        backup = subprocess.run(
            [TRACKER_COMMAND, "backup", str(tmp_path / "b")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        log = serving.stop()
    assert backup.returncode == 0, backup.stderr
    assert "state store" in backup.stdout and "vectors" in backup.stdout
    assert "Traceback" not in log

    home = tmp_path / "restored"
    restored_env = {**env, "TRACKER_HOME": str(home)}
    restore = subprocess.run(
        [TRACKER_COMMAND, "restore", str(tmp_path / "b")],
        env=restored_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restore.returncode == 0, restore.stderr
    sent_before = sorted(p.name for p in (home / "digests").glob("*.md"))
    assert sent_before, "the first digest came with the backup"
    agrees_with_itself(home)

    again = Serving(restored_env)
    try:
        again.until_caught_up()
    finally:
        again_log = again.stop()
    assert sorted(p.name for p in (home / "digests").glob("*.md")) == sent_before
    assert "digest 2" not in again_log, "no second digest was made"
    with SQLiteStateStore(home / "state.sqlite3") as store:
        assert store.db.execute("SELECT count(*) FROM digests").fetchone()[0] == 1


def test_a_forced_restore_of_what_cannot_be_restored_leaves_the_home_as_it_was(
    world: FeedServer, tmp_path: Path, capsys
):
    assert main(["collect"]) == 0
    settings = Settings.from_env()
    before = sorted(p.name for p in settings.home.iterdir() if p.suffix != ".lock")
    assert main(["backup", str(tmp_path / "newer")]) == 0
    db = sqlite3.connect(tmp_path / "newer" / "state.sqlite3")
    db.execute("INSERT INTO schema_migrations VALUES (99, 'future', '2027-01-01', '9.0.0')")
    db.commit()
    db.close()
    capsys.readouterr()

    assert main(["restore", "--force", str(tmp_path / "typo")]) == 2
    assert "is not a tracker backup" in capsys.readouterr().err
    assert main(["restore", "--force", str(tmp_path / "newer")]) == 2
    assert "made by a newer tracker (schema 99)" in capsys.readouterr().err

    assert sorted(p.name for p in settings.home.iterdir() if p.suffix != ".lock") == before
    agrees_with_itself(settings.home)


def test_a_backup_it_cannot_write_is_a_sentence_not_a_traceback(
    world: FeedServer, tmp_path: Path, capsys
):
    assert main(["collect"]) == 0
    (tmp_path / "a-file").write_text("not a folder")
    capsys.readouterr()
    assert main(["backup", str(tmp_path / "a-file" / "nightly")]) == 2
    said = capsys.readouterr().err
    assert "cannot back up into" in said and "Traceback" not in said
