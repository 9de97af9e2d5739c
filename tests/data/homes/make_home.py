"""Make a small real tracker home with today's code, for the upgrade tests of later releases.

    .venv/bin/python tests/data/homes/make_home.py        # writes v<version>-schema<N>.tar.gz

What it holds, all made through tracker's own code against feeds served on loopback at a
fixed clock (``tests.homes.MADE_AT``): an arXiv query, a blog whose teaser's article page
keeps failing (a page still queued), a project's releases, Hacker News with points, and a
feed that answers 500 (backing off); everything processed with the real embedding model into
Chroma; a digest made and delivered on each of two routes; 👍 and 👎 on stories. Beside the
archive goes ``<name>.json``: the census of the home, what ``tracker stats --json`` and
``tracker ask --json`` printed, and the versions that made it.

Run it again only to add the home of a new schema version; never replace a committed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import io
import json
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from storage.feedback import SQLiteFeedbackStore  # noqa: E402
from storage.migrations import SCHEMA_VERSION  # noqa: E402
from storage.state import SQLiteStateStore  # noqa: E402
from tests.conftest import ABSTRACT, OTHER, FeedServer  # noqa: E402
from tests.homes import HOMES, MADE_AT, QUESTION, census  # noqa: E402
from tests.test_arxiv import page  # noqa: E402
from tracker import __version__  # noqa: E402
from tracker.app import open_tracker  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.collect import collect  # noqa: E402
from tracker.config import load_config  # noqa: E402
from tracker.runtime import Runtime  # noqa: E402
from tracker.settings import Settings  # noqa: E402

DATA = ROOT / "tests" / "data"
PUBLISHED = MADE_AT - timedelta(hours=6)


def serve_the_world(server: FeedServer) -> None:
    papers = [
        ("2411.01234", "Faster Decoding with Draft Models", ABSTRACT),
        ("2411.05678", "Faster Folding with Graph Models", OTHER),
    ]
    server.add(
        "/api/query",
        page(
            [
                {
                    "id": i,
                    "title": t,
                    "abstract": a,
                    "published": PUBLISHED.isoformat(),
                    "updated": PUBLISHED.isoformat(),
                }
                for i, t, a in papers
            ]
        ),
        content_type="application/atom+xml",
    )
    when = email.utils.format_datetime(PUBLISHED, usegmt=True)
    server.add(
        "/blog.xml",
        f"""<rss version="2.0"><channel><title>Inference Notes</title>
      <item><title>Our paper on faster decoding is out</title>
        <link>{server.url("/posts/decoding")}</link><guid>p1</guid><pubDate>{when}</pubDate>
        <description><![CDATA[<p>Read the paper <a href="https://arxiv.org/abs/2411.01234">on
        arXiv</a>. Speculative decoding with a small draft model doubles throughput for large
        models without changing outputs. We explain when drafts are accepted, how batching
        interacts with long drafts, and what this means for serving costs.</p>]]></description>
      </item>
      <item><title>Notes on KV cache quantisation</title>
        <link>{server.url("/posts/kv-cache")}</link><guid>p2</guid><pubDate>{when}</pubDate>
        <description>Quantising the KV cache to four bits... Read more</description>
      </item></channel></rss>""",
    )
    server.add(
        "/posts/decoding",
        "<html><body><article><p>Speculative decoding post.</p></article></body></html>",
        content_type="text/html",
    )
    server.add("/posts/kv-cache", "busy", status=503)  # its page stays queued
    release = """<entry><id>tag:github.com,2008:Repository/1/{tag}</id><updated>{when}</updated>
      <link rel="alternate" type="text/html" href="https://github.com/acme/infer/releases/tag/{tag}"/>
      <title>{tag}</title><content type="html">&lt;ul&gt;&lt;li&gt;Faster prefix caching.&lt;/li&gt;&lt;/ul&gt;</content></entry>"""
    server.add(
        "/releases.atom",
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>r</title>'
        + release.format(tag="v1.0.0", when=(PUBLISHED - timedelta(hours=1)).isoformat())
        + "</feed>",
    )
    hn = json.loads((DATA / "hn_search.json").read_text(encoding="utf-8"))
    hn["hits"][0]["url"] = server.url("/posts/decoding") + "?utm_source=hn"
    for hit in hn["hits"]:
        hit["created_at"] = PUBLISHED.isoformat().replace("+00:00", "Z")
    server.add("/hn", json.dumps(hn), content_type="application/json")
    server.add("/down.xml", "down for maintenance", status=500)


def sources_yaml(server: FeedServer) -> str:
    return f"""interests: [speculative decoding and LLM inference]
sources:
  - {{name: papers, kind: arxiv, query: "cat:cs.CL", url: "{server.url("/api/query")}"}}
  - {{name: blog, kind: feed, url: "{server.url("/blog.xml")}", weight: 1.5}}
  - {{name: infer, kind: github_releases, repo: acme/infer, url: "{server.url("/releases.atom")}"}}
  - {{name: hn, kind: hackernews, query: LLM, url: "{server.url("/hn")}"}}
  - {{name: down, kind: feed, url: "{server.url("/down.xml")}"}}
digest:
  routes:
    - {{name: team}}
    - {{name: releases, sections: [releases]}}
"""


def make(home: Path) -> dict:
    server = FeedServer()
    serve_the_world(server)
    settings = Settings(home=home, sources_path=home / "sources.yaml", timeout=2.0)
    settings.sources_path.write_text(sources_yaml(server), encoding="utf-8")
    config = load_config(settings.sources_path)
    with SQLiteStateStore(settings.state_db) as store:
        collect(config, settings, store, now=lambda: MADE_AT)
    with open_tracker(settings) as tracker:
        tracker.process(now=lambda: MADE_AT)
        stories = {s.title: s.id for s in tracker.stories.stories()}
    runtime = Runtime(settings, config, now=lambda: MADE_AT)

    async def digests() -> None:
        try:
            await runtime.digests.all_digests()
        finally:
            await runtime.stop()

    asyncio.run(digests())
    with SQLiteStateStore(settings.state_db) as store:
        feedback = SQLiteFeedbackStore(store)
        feedback.vote(stories["Faster Decoding with Draft Models"], "reader-1", 1, MADE_AT)
        feedback.vote(stories["Faster Decoding with Draft Models"], "reader-2", 1, MADE_AT)
        feedback.vote(stories["Faster Folding with Graph Models"], "reader-1", -1, MADE_AT)
    os.environ["TRACKER_HOME"] = str(home)
    os.environ["TRACKER_SOURCES"] = str(settings.sources_path)
    stats = _printed(["stats", "--json"])
    answer = _printed(["ask", QUESTION, "--json"])
    server.httpd.shutdown()
    return {"stats": stats, "ask": answer}


def _printed(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"tracker {' '.join(argv)} exited {code}")
    return json.loads(out.getvalue())


def compact(home: Path) -> None:
    """The state store as one small file: WAL folded in, free pages dropped."""
    db = sqlite3.connect(home / "state.sqlite3")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("VACUUM")
    db.close()
    for leftover in ("serve.lock",):
        (home / leftover).unlink(missing_ok=True)


def main_() -> None:
    import chromadb

    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TRACKER_SUMMARY_MODEL", "DISCORD_TOKEN"):
        os.environ.pop(key, None)
    name = f"v{__version__}-schema{SCHEMA_VERSION}"
    archive = HOMES / f"{name}.tar.gz"
    if archive.exists():
        raise SystemExit(f"{archive} exists: a committed home is never replaced")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        printed = make(home)
        compact(home)
        manifest = {
            "tracker": __version__,
            "schema": SCHEMA_VERSION,
            "chromadb": chromadb.__version__,
            "made_at": MADE_AT.isoformat(),
            "question": QUESTION,
            "census": census(home),
            **printed,
        }
        with tarfile.open(archive, "w:gz", compresslevel=9) as tar:
            for path in sorted(home.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(home)), recursive=False)
    archive.with_name(f"{name}.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"{archive} ({archive.stat().st_size:,} bytes) and {name}.json")
    shutil.rmtree(Path(tmp), ignore_errors=True)


if __name__ == "__main__":
    main_()
