"""How long a first collect of a teaser feed takes when its article pages are slow.

A feed of ``--pages`` teasers (each links to its article) is served on 127.0.0.1 by a
server that answers every article page after ``--delay`` seconds. One feed source with
``full_text: auto`` is collected once, as a first run does, with ``TRACKER_PER_HOST`` and
``TRACKER_MAX_PAGES`` as given; the wall time is printed for the pages fetched one at a
time (``--one-at-a-time``, as before) and several at once (``PAGE_WORKERS`` of
``tracker.collect.sources.article_pages``).

Usage::

    .venv/bin/python bench/pages.py [--pages 50] [--delay 3] [--per-host 4] [--one-at-a-time]

Nothing here touches the network.
"""

# ruff: noqa: E402  (tracker is imported after putting the project root on sys.path)

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.collect.http import HttpClient
from tracker.collect.pages import HostBook
from tracker.collect.sources import article_pages
from tracker.collect.sources.base import CollectContext
from tracker.collect.sources.feed import FeedCollector, FeedSource
from tracker.settings import Settings

ARTICLE = "<html><body><article><h1>A post</h1>" + "<p>A sentence of the article.</p>" * 60


def serve(pages: int, delay: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/page"):
                time.sleep(delay)
                body, kind = ARTICLE.encode(), "text/html"
            else:
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                items = "".join(
                    f"<item><title>Post {n}</title><link>{base}/page?{n}</link>"
                    f"<guid>p{n}</guid><description>A teaser {n}…</description></item>"
                    for n in range(pages)
                )
                body = f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
                body, kind = body.encode(), "application/rss+xml"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--delay", type=float, default=3.0)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--one-at-a-time", action="store_true")
    args = parser.parse_args(argv)
    if args.one_at_a_time:
        article_pages.PAGE_WORKERS = 1
    server = serve(args.pages, args.delay)
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    home = Path("/nonexistent")
    settings = Settings(
        home=home, sources_path=home / "sources.yaml", per_host=args.per_host, max_pages=args.pages
    )
    source = FeedSource(name="slow", kind="feed", url=url, full_text="auto")
    started = time.perf_counter()
    with HttpClient(settings) as http:
        hosts = HostBook(pages_per_host=args.pages)
        run = FeedCollector().collect(
            source, CollectContext(http=http, hosts=hosts, max_pages=args.pages)
        )
    seconds = time.perf_counter() - started
    server.shutdown()
    how = "one at a time" if args.one_at_a_time else f"up to {article_pages.PAGE_WORKERS} at once"
    print(
        f"{args.pages} pages answering in {args.delay:g} s, per-host {args.per_host}, {how}: "
        f"{run.pages_fetched} fetched, {run.pages_failed} failed in {seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
