"""``tracker serve`` with no token over recorded real feeds: it writes the first digest.

Six recorded AI blogs from ../shared/fixtures are served on loopback; the real
command runs in its own process, collects them, and writes the first digest at
once. The recorded posts are months or years old: they are the blogs' backlog,
stored and searchable but never in a digest. The expected titles (posts within
digest.max_age, if any) come from feedparser reading the same files, not from tracker.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from tests.conftest import SHARED_FIXTURES, TRACKER_COMMAND, FeedServer

if not SHARED_FIXTURES.is_dir():
    pytest.skip("real-world fixtures not found", allow_module_level=True)

pytestmark = pytest.mark.realworld

BLOGS = SHARED_FIXTURES / "feeds" / "blogs"
FEEDS = sorted(p for p in BLOGS.glob("ffp_ai_*") if p.suffix == ".xml")


def test_serve_without_a_token_turns_recorded_blogs_into_a_digest_file(
    server: FeedServer, tracker_home: Path, tmp_path: Path
):
    assert len(FEEDS) >= 6
    titles: set[str] = set()
    fresh: set[str] = set()
    recent = datetime.now(UTC) - timedelta(days=3)  # digest.max_age's default
    lines = []
    for n, path in enumerate(FEEDS[:6]):
        server.add(f"/feed{n}.xml", path.read_bytes())
        for e in feedparser.parse(path.read_bytes()).entries:
            title = " ".join(e.title.split())
            titles.add(title)
            dates = [e.get("published_parsed"), dict.get(e, "updated_parsed")]
            if any(d and datetime(*d[:6], tzinfo=UTC) >= recent for d in dates):
                fresh.add(title)
        lines.append(
            f'  - {{name: blog{n}, kind: feed, url: "{server.url(f"/feed{n}.xml")}", '
            "full_text: never}"
        )
    due = datetime.now(UTC) - timedelta(minutes=1)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f'digest: {{time: "{due:%H:%M}", timezone: UTC, size: 8}}\nsources:\n'
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    env = {**os.environ, "TRACKER_SOURCES": str(sources)}
    serve = subprocess.Popen(
        [TRACKER_COMMAND, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    digests = tracker_home / "digests"
    try:
        deadline = time.monotonic() + 300
        while not (digests.exists() and any(digests.glob("*.md"))):
            assert serve.poll() is None, serve.communicate()
            assert time.monotonic() < deadline, "no digest file appeared"
            time.sleep(0.2)
    finally:
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=120)

    assert serve.returncode == 0, err
    (path,) = digests.glob("*.md")
    text = path.read_text(encoding="utf-8")
    headings = re.findall(r"^### (.+)$", text, flags=re.M)
    unescaped = {re.sub(r"\\(.)", r"\1", h) for h in headings}
    assert unescaped == fresh  # the backlog stays out, however much of it there is
    assert "This was your first digest. The next one comes" in text
    assert "collected 6 sources" in err and "Traceback" not in err
    assert "This was your first digest" in out  # and printed to the terminal
    with sqlite3.connect(tracker_home / "state.sqlite3") as db:
        stored = db.execute("SELECT count(*) FROM items").fetchone()[0]
        stories = db.execute("SELECT count(*) FROM stories").fetchone()[0]
    assert stored >= len(titles) // 2 and stories > 0  # stored, searchable, not in the digest
