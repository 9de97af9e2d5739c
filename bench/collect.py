"""Benchmark ``tracker.collect.collect`` over recorded real feeds served from 127.0.0.1.

Builds N sources (default 200) from the recorded blog feeds in
``../shared/fixtures/feeds/blogs`` (cycled, each served at its own path) and the
recorded arXiv API responses in ``../shared/fixtures/feeds/arxiv`` (each served at
the path and query it was recorded at), writes a sources.yaml into a temporary
TRACKER_HOME, and collects everything four times, each run straight after the last:

* run 1, cold: every source is new; teasers queue their article pages (with
  ``--dead-pages`` or ``--full-text``) and the first pages are asked for;
* run 2, warm: feeds answer 304 Not Modified to the validators saved in run 1
  (arXiv has no conditional GET, so it is fetched and parsed again); only article
  pages that are due are asked for: those past run 1's page caps, on hosts that
  were not paused;
* runs 3 and 4: the same again, to show the state the queue settles in. With
  ``--dead-pages`` run 3 should be every feed a 304 and not one page request (the
  failed pages wait 1 h, the refusing hosts are paused for at least 1 h); with
  ``--full-text`` each run brings the next pages the per-host cap allows (an item
  whose page arrives is made whole, not counted as "updated").

The runs share one clock: real time plus an offset. ``--hours N`` then collects N
more times, the clock moved on one hour before each, and prints a line per hour
(page requests, feeds answering 304, the queue). With ``--dead-pages`` a host that
refuses 3 pages in a run gets a strike and no page request for 1 h, then 4 h, then
16 h; at the fourth strike (+21 h) every page queued for it keeps its teaser for good.
A page of a host that refused fewer than 3 is retried after 1 h, 4 h and 16 h and then
given up.

Article pages (``full_text: auto`` on every feed, only with one of these flags):

* ``--dead-pages``: every linked page fails as on a host that cannot be looked up
  (``[Errno -2] Name or service not known``), without leaving the machine;
* ``--full-text``: every linked page is answered by the local server with one of
  the recorded pages in ``../shared/fixtures/html`` (picked by a hash of its URL).

The server is a small HTTP/1.1 server with ETag / Last-Modified conditional GET,
by default in a separate process so its CPU time does not count against the
collector (``--server thread`` puts it in a thread of this process instead).

Nothing goes to the internet. Every request the collector makes goes through a
transport that passes 127.0.0.1 on and refuses (or, ``--full-text``, reroutes to
the local server) any other host; "page requests" in the report are those it
refused or rerouted, and they never reach a socket. Underneath, for the length of
the runs, every socket connect and name lookup of this process is checked: one
for an address or name that is not loopback is refused and counted, and the
``no_internet`` check is that count being 0. It fails if anything in the
collector goes around the transport (its own client, a DNS lookup of a link).

For each run the report gives wall time, CPU, requests made (every request the
transport saw, refused ones included) and answered, bytes, feeds answering 304,
page requests, article pages fetched / failed (sums over the sources) and
pending / given up (the queue afterwards), and items new / updated / unchanged.

Usage::

    .venv/bin/python bench/collect.py [--sources 200] [--json] [--server process|thread]
        [--workers 8] [--per-host 8] [--gzip] [--no-304] [--dead-pages | --full-text]
        [--hours N] [--tracemalloc]

Exits 1 if any source fails with an error in any run (the benchmark would then
not measure what it says; a page that fails is not a source error), 2 if the
fixtures cannot be found.
"""

# ruff: noqa: E402  (tracker is imported after putting the project root on sys.path)

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import ipaddress
import json
import multiprocessing
import resource
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, even when it is not installed in this Python

import httpx

from storage.state import SQLiteStateStore
from tracker.collect import collect
from tracker.collect.http import HttpClient
from tracker.collect.sources.arxiv import ArxivSource, parse_page, query_url
from tracker.config import Config, load_config
from tracker.errors import ParseError
from tracker.models import SourceResult, Status
from tracker.settings import Settings

DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: The collector never sees this port: arXiv routes are keyed on path and query only.
PLACEHOLDER_API = "http://127.0.0.1:1/api/query"
#: What a lookup of a host that does not resolve says (glibc's EAI_NONAME).
DNS_FAILURE = "[Errno -2] Name or service not known"
#: What becomes of a request for a host other than 127.0.0.1, by --dead-pages / --full-text.
PAGE_MODES = ("none", "dead", "served")


# --- the fixtures ----------------------------------------------------------


def content_type_for(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".json"):
        return "application/feed+json"
    if ".atom" in name:
        return "application/atom+xml"
    if ".rss" in name:
        return "application/rss+xml"
    return "application/xml"


def is_json_feed(path: Path) -> bool:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and str(data.get("version", "")).startswith("https://jsonfeed.org/version/")
        and isinstance(data.get("items"), list)
    )


def blog_files(folder: Path) -> tuple[list[Path], list[str]]:
    """RSS, Atom and JSON Feed files; the names of the files left out."""
    kept: list[Path] = []
    left_out: list[str] = []
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if suffix in (".xml", ".rss", ".atom") or (
            suffix == ".json" and "expected" not in path.name and is_json_feed(path)
        ):
            kept.append(path)
        else:
            left_out.append(path.name)
    return kept, left_out


@dataclass(frozen=True)
class Recorded:
    file: Path
    status: int


def route_key(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def arxiv_pages(source: ArxivSource, recorded: dict[str, Recorded]) -> list[str] | None:
    """The routes the arXiv collector will request for ``source``, or None if one is missing.

    Walks the pages exactly as ``ArxivCollector.collect`` does, with its own
    ``query_url`` and ``parse_page``, so every request of the run is served.
    """
    keys: list[str] = []
    page_size = min(source.page_size, source.max_results)
    start = 0
    while start < source.max_results:
        url = query_url(source, start, min(page_size, source.max_results - start))
        found = recorded.get(route_key(url))
        if found is None or found.status != 200:
            return None
        keys.append(route_key(url))
        try:
            results, total = parse_page(found.file.read_bytes(), url)
        except ParseError:
            return None
        start += len(results)
        if not results or start >= total:
            break
    return keys


def arxiv_sources(folder: Path) -> tuple[list[tuple[ArxivSource, list[str]]], dict, list[str]]:
    """arXiv sources whose every request was recorded, the recordings, and what was left out.

    Each recorded first page (start=0) becomes a single-page source with that
    query, ids and max_results; when later pages of the same query were
    recorded too, a multi-page source (page_size = the recorded page) is added.
    """
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    recorded = {
        route_key(e["url"]): Recorded(folder / e["file"], int(e["status_code"])) for e in index
    }
    left_out: list[str] = []
    found: dict[tuple, tuple[ArxivSource, list[str]]] = {}

    def add(source: ArxivSource) -> bool:
        pages = arxiv_pages(source, recorded)
        if pages is None:
            return False
        key = (source.query, tuple(source.ids), source.max_results, source.page_size)
        found.setdefault(key, (source, pages))
        return True

    for entry in index:
        args = dict(parse_qsl(urlsplit(entry["url"]).query, keep_blank_values=True))
        wanted = {"search_query", "id_list", "sortBy", "sortOrder", "start", "max_results"}
        if int(entry["status_code"]) != 200:
            left_out.append(f"{entry['file']} (recorded status {entry['status_code']})")
            continue
        if set(args) != wanted or args["sortBy"] != "relevance":
            left_out.append(f"{entry['file']} (query string not one query_url builds)")
            continue
        if args["start"] != "0":
            continue  # a later page; used by the multi-page sources below
        size = int(args["max_results"])
        fields = {
            "name": "probe",
            "kind": "arxiv",
            "url": PLACEHOLDER_API,
            "query": args["search_query"],
            "ids": args["id_list"].split(",") if args["id_list"] else [],
            "sort_by": "relevance",
            "page_size": size,
        }
        if not add(ArxivSource(**fields, max_results=size)):
            left_out.append(f"{entry['file']} (query_url does not reproduce its query string)")
            continue
        # as many further pages of the same query as were recorded, one source reading them all
        pages = 1
        while size * (pages + 1) <= 2000:
            walked = arxiv_pages(ArxivSource(**fields, max_results=size * (pages + 1)), recorded)
            if walked is None or len(walked) < pages + 1:
                break  # a page is missing, or the results end before it
            pages += 1
        if pages > 1:
            add(ArxivSource(**fields, max_results=size * pages))
    # searches before id lookups and multi-page before single-page, so a small --arxiv
    # still exercises paging; the id lookups (one paper or none each) come last
    chosen = sorted(
        found.values(),
        key=lambda sp: (not sp[0].query, -len(sp[1]), -sp[0].max_results, sp[0].ids),
    )
    return chosen, recorded, left_out


# --- the server ------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    content: bytes
    gzipped: bytes | None
    content_type: str
    etag: str
    last_modified: str

    @classmethod
    def load(cls, path: str, content_type: str, use_gzip: bool) -> Body:
        content = Path(path).read_bytes()
        return cls(
            content,
            gzip.compress(content, 6) if use_gzip else None,
            content_type,
            '"' + hashlib.sha1(content).hexdigest()[:20] + '"',
            email.utils.formatdate(Path(path).stat().st_mtime, usegmt=True),
        )


class FixtureServer(ThreadingHTTPServer):
    """Serves fixture files at fixed paths, with conditional GET, and counts what it sent."""

    daemon_threads = True
    request_queue_size = 512  # the default 5 drops SYNs when many connections open at once

    def __init__(
        self,
        routes: dict[str, tuple[str, str]],
        pages: list[str],
        use_gzip: bool,
        conditional: bool,
    ):
        self.routes = {k: Body.load(f, t, use_gzip) for k, (f, t) in routes.items()}
        self.pages = [Body.load(f, "text/html", use_gzip) for f in pages]
        self.conditional = conditional
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.bytes_sent = 0
        self.handler_cpu = 0.0
        super().__init__(("127.0.0.1", 0), FixtureHandler)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "bytes_sent": self.bytes_sent,
                "handler_cpu_s": self.handler_cpu,
                "process_cpu_s": time.process_time(),
            }


class FixtureHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FixtureServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/__stats":
            self._send(200, json.dumps(self.server.stats()).encode(), "application/json", {})
            return
        started = time.thread_time()
        try:
            self._serve()
        finally:
            with self.server.lock:
                self.server.handler_cpu += time.thread_time() - started

    def _serve(self) -> None:
        body = self.server.routes.get(self.path)
        if body is None and self.path.startswith("/__page/") and self.server.pages:
            digest = self.path.removeprefix("/__page/")
            body = self.server.pages[int(digest, 16) % len(self.server.pages)]
        if body is None:
            self._count(404, 0)
            message = f"no fixture is served at {self.path}\n".encode()
            self._send(404, message, "text/plain", {})
            return
        validators = {"ETag": body.etag, "Last-Modified": body.last_modified}
        if self.server.conditional and self._fresh(body):
            self._count(304, 0)
            self._send(304, b"", None, validators)
            return
        content, extra = body.content, dict(validators)
        if body.gzipped is not None:
            extra["Vary"] = "Accept-Encoding"
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                content = body.gzipped
                extra["Content-Encoding"] = "gzip"
        self._count(200, len(content))
        self._send(200, content, body.content_type, extra)

    def _fresh(self, body: Body) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:
            tags = [t.strip().removeprefix("W/") for t in match.split(",")]
            return "*" in tags or body.etag in tags
        return self.headers.get("If-Modified-Since") == body.last_modified

    def _count(self, status: int, size: int) -> None:
        with self.server.lock:
            self.server.statuses[status] += 1
            self.server.bytes_sent += size

    def _send(self, status: int, body: bytes, ctype: str | None, extra: dict[str, str]) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for key, value in extra.items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)


def _serve_in_child(args: tuple, conn: Any) -> None:
    server = FixtureServer(*args)
    conn.send(server.server_address[1])
    server.serve_forever(poll_interval=0.5)


class LocalServer:
    """The fixture server, in a child process (default) or in a thread of this one."""

    def __init__(self, mode: str, *args: Any):
        self.mode = mode
        self._process: multiprocessing.process.BaseProcess | None = None
        self._server: FixtureServer | None = None
        if mode == "process":
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            receive, send = ctx.Pipe(duplex=False)
            self._process = ctx.Process(target=_serve_in_child, args=(args, send), daemon=True)
            self._process.start()
            if not receive.poll(30):
                self.close()
                raise RuntimeError("the fixture server process did not start")
            self.port = int(receive.recv())
            self.pid = self._process.pid
        else:
            self._server = FixtureServer(*args)
            self.port = self._server.server_address[1]
            threading.Thread(target=self._server.serve_forever, daemon=True).start()
            self.pid = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        if self._server is not None:
            return self._server.stats()
        return httpx.get(self.base + "/__stats", trust_env=False, timeout=10).json()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._process is not None:
            self._process.terminate()
            self._process.join(5)


class LoopbackOnly(httpx.BaseTransport):
    """Passes loopback requests on; any other host (a linked article page) is, by ``pages``:

    * ``none``: refused with a ConnectError (no page is expected: full_text is never);
    * ``dead`` (``--dead-pages``): refused with a ConnectError worded like a failed DNS
      lookup, as a host that cannot be reached answers;
    * ``served`` (``--full-text``): rerouted to the local server, which answers with one
      of the recorded pages, picked by a hash of the URL.

    Refused requests never reach a socket; rerouted ones reach 127.0.0.1 only.
    """

    def __init__(self, port: int, pages: str):
        if pages not in PAGE_MODES:
            raise ValueError(f"pages must be one of {PAGE_MODES}, not {pages!r}")
        self._inner = httpx.HTTPTransport()
        self._port = port
        self._pages = pages
        self._lock = threading.Lock()
        self.sent = 0  # every request the client handed over, refused ones included
        self.refused = 0
        self.rerouted = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent += 1
        if request.url.host not in LOOPBACK:
            if self._pages != "served":
                with self._lock:
                    self.refused += 1
                message = (
                    DNS_FAILURE
                    if self._pages == "dead"
                    else f"the benchmark does not go to the internet ({request.url})"
                )
                raise httpx.ConnectError(message, request=request)
            with self._lock:
                self.rerouted += 1
            digest = hashlib.sha1(str(request.url).encode()).hexdigest()[:12]
            request.url = httpx.URL(f"http://127.0.0.1:{self._port}/__page/{digest}")
            request.headers["Host"] = f"127.0.0.1:{self._port}"
        return self._inner.handle_request(request)

    @property
    def page_requests(self) -> int:
        """Requests for another host than 127.0.0.1: article pages, refused or rerouted."""
        return self.refused + self.rerouted

    def close(self) -> None:
        self._inner.close()


def _is_loopback(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard, not a lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).split("%")[0].strip("[]").lower().rstrip(".")
    if name in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class NetGuard:
    """While installed, refuses and counts every socket connect and name lookup of this
    process for an address or name that is not loopback.

    The transport already keeps requests on 127.0.0.1; this is what makes ``no_internet``
    a check that can fail: anything that went around it (another client, a DNS lookup of
    a linked page's host) is refused here, before it leaves the machine, and counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.attempts: list[str] = []
        self._saved: tuple[Any, Any, Any] | None = None

    def _refuse(self, what: str) -> None:
        with self._lock:
            self.attempts.append(what)

    def install(self) -> None:
        connect, connect_ex, getaddrinfo = (
            socket.socket.connect,
            socket.socket.connect_ex,
            socket.getaddrinfo,
        )
        self._saved = (connect, connect_ex, getaddrinfo)
        guard = self

        def inet(sock: socket.socket, address: Any) -> bool:
            return sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0])

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            if inet(sock, address):
                guard._refuse(f"connect {address[0]}:{address[1]}")
                raise ConnectionRefusedError(f"bench: no connection to {address[0]}")
            connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            if inet(sock, address):
                guard._refuse(f"connect {address[0]}:{address[1]}")
                return 111  # ECONNREFUSED
            return connect_ex(sock, address)

        def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not _is_loopback(host):
                guard._refuse(f"lookup {host}")
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return getaddrinfo(host, *args, **kwargs)

        # socket.socket is the Python subclass of _socket.socket: its methods can be replaced
        setattr(socket.socket, "connect", guarded_connect)  # noqa: B010
        setattr(socket.socket, "connect_ex", guarded_connect_ex)  # noqa: B010
        setattr(socket, "getaddrinfo", guarded_getaddrinfo)  # noqa: B010

    def uninstall(self) -> None:
        if self._saved is not None:
            connect, connect_ex, getaddrinfo = self._saved
            setattr(socket.socket, "connect", connect)  # noqa: B010
            setattr(socket.socket, "connect_ex", connect_ex)  # noqa: B010
            setattr(socket, "getaddrinfo", getaddrinfo)  # noqa: B010
            self._saved = None

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.attempts)


class Clock:
    """The runs' clock, passed to ``collect(now=...)``: real time plus an offset, which
    ``--hours`` moves on one hour before each of its runs."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


# --- the sources -----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    feeds: list[tuple[str, str, Path]]  # name, route, file
    arxiv: list[tuple[str, ArxivSource]]  # name, source (url is a placeholder)
    routes: dict[str, tuple[str, str]]  # route -> (file, content type)
    feed_files: list[Path]
    left_out: list[str]


def plan_sources(fixtures: Path, n: int, n_arxiv: int | None) -> Plan:
    files, left_out = blog_files(fixtures / "feeds" / "blogs")
    arxiv, recorded, arxiv_left_out = arxiv_sources(fixtures / "feeds" / "arxiv")
    left_out = [f"blogs/{x}" for x in left_out] + [f"arxiv/{x}" for x in arxiv_left_out]
    if not files:
        raise FileNotFoundError(f"no feed files in {fixtures / 'feeds' / 'blogs'}")
    if n_arxiv is None:  # about one source in ten, as long as there are feeds too
        k = min(len(arxiv), max(1, n // 10)) if n > 1 else 0
    else:
        k = max(0, min(n_arxiv, len(arxiv), n))
    routes: dict[str, tuple[str, str]] = {}
    chosen_arxiv: list[tuple[str, ArxivSource]] = []
    for i, (source, pages) in enumerate(arxiv[:k]):
        what = source.query or ",".join(source.ids)
        chosen_arxiv.append((f"arxiv-{i:02d}-{what[:30]}-{source.max_results}", source))
        for key in pages:
            routes[key] = (str(recorded[key].file), "application/atom+xml")
    feeds: list[tuple[str, str, Path]] = []
    for i in range(n - k):
        file = files[i % len(files)]
        route = f"/feed/{i}{file.suffix.lower()}"
        routes[route] = (str(file), content_type_for(file))
        feeds.append((f"feed-{i:03d}-{file.name[:50]}", route, file))
    return Plan(feeds, chosen_arxiv, routes, files, left_out)


def sources_yaml(plan: Plan, base: str, full_text: str) -> str:
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    entries: list[list[str]] = []
    for name, route, _ in plan.feeds:
        entries.append(
            [f"name: {q(name)}", "kind: feed", f"url: {q(base + route)}", f"full_text: {full_text}"]
        )
    # spread the arXiv sources evenly through the list, as a real sources.yaml might
    step = max(1, len(entries) // max(1, len(plan.arxiv)))
    for j, (name, s) in enumerate(plan.arxiv):
        entry = [
            f"name: {q(name)}",
            "kind: arxiv",
            f"url: {q(base + '/api/query')}",
            f"query: {q(s.query)}",
            f"ids: {q(list(s.ids))}",
            f"max_results: {s.max_results}",
            f"page_size: {s.page_size}",
            f"sort_by: {s.sort_by}",
        ]
        entries.insert(min(len(entries), j * step + j), entry)
    lines = ["# written by bench/collect.py", "sources:"]
    for entry in entries:
        lines.append(f"  - {entry[0]}")
        lines.extend(f"    {field}" for field in entry[1:])
    return "\n".join(lines) + "\n"


# --- running ---------------------------------------------------------------


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1_048_576


@dataclass(frozen=True)
class Runs:
    """What every run of one benchmark shares: one state store, server and clock."""

    config: Config
    settings: Settings
    store: SQLiteStateStore
    server: LocalServer
    pages: str  # one of PAGE_MODES
    clock: Clock
    guard: NetGuard


def run_once(label: str, runs: Runs) -> dict[str, Any]:
    before = runs.server.stats()
    escaped = runs.guard.count
    transport = LoopbackOnly(runs.server.port, runs.pages)
    http = HttpClient(runs.settings, transport=transport)
    at = runs.clock()
    cpu = time.process_time()
    started = time.perf_counter()
    try:
        results = collect(runs.config, runs.settings, runs.store, http=http, now=runs.clock)
    finally:
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        http.close()
    after = runs.server.stats()
    summary = summarise(label, results, wall, cpu, http, transport, before, after, runs.server.mode)
    summary["clock"] = at.isoformat(timespec="seconds")
    # the queue as stored after the run, over every source
    summary["pages"]["given_up"] = sum(c.gave_up for c in runs.store.page_counts().values())
    summary["non_loopback_attempts"] = runs.guard.count - escaped
    return summary


def summarise(
    label: str,
    results: Sequence[SourceResult],
    wall: float,
    cpu: float,
    http: HttpClient,
    transport: LoopbackOnly,
    before: dict[str, Any],
    after: dict[str, Any],
    mode: str,
) -> dict[str, Any]:
    statuses = Counter(r.status.value for r in results)
    by_kind: dict[str, Counter[str]] = {}
    for r in results:
        by_kind.setdefault(r.kind, Counter())[r.status.value] += 1
    new = sum(r.new for r in results)
    updated = sum(r.updated for r in results)
    unchanged = sum(r.unchanged for r in results)
    served = Counter({int(k): v for k, v in after["statuses"].items()})
    served.subtract({int(k): v for k, v in before["statuses"].items()})
    server_cpu_key = "process_cpu_s" if mode == "process" else "handler_cpu_s"
    timed = sorted((r for r in results if r.status is not Status.ERROR), key=lambda r: -r.seconds)
    warnings = [{"source": r.source, "warning": w} for r in results for w in r.warnings]
    return {
        "run": label,
        "wall_s": round(wall, 3),
        "client_cpu_s": round(cpu, 3),
        "server_cpu_s": round(after[server_cpu_key] - before[server_cpu_key], 3),
        "sources": {s.value: statuses.get(s.value, 0) for s in Status},
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
        "feeds_304": by_kind.get("feed", Counter())[Status.NOT_MODIFIED.value],
        "items": {"new": new, "updated": updated, "unchanged": unchanged},
        "new_items_per_s": round(new / wall, 1) if wall else None,
        "items_per_s": round((new + updated + unchanged) / wall, 1) if wall else None,
        "sources_per_s": round(len(results) / wall, 1) if wall else None,
        # every request handed to the transport, the refused ones included ...
        "requests_made": transport.sent,
        # ... and those answered (by 127.0.0.1): HttpClient counts a request once it responds
        "requests": http.requests,
        "bytes": http.bytes,
        "server_responses": {str(k): v for k, v in sorted(served.items()) if v},
        "server_bytes_sent": after["bytes_sent"] - before["bytes_sent"],
        # article pages asked for: refused (--dead-pages) or served locally (--full-text)
        "page_requests": transport.page_requests,
        "off_host_refused": transport.refused,
        "off_host_rerouted": transport.rerouted,
        "pages": {
            "fetched": sum(r.pages_fetched for r in results),
            "failed": sum(r.pages_failed for r in results),
            "pending": sum(r.pages_pending for r in results),
        },
        "warnings": sum(1 for r in results if r.warnings),
        "warning_samples": [w for w in warnings if not w["warning"].startswith("full text")][:5],
        "page_warning_samples": [w for w in warnings if w["warning"].startswith("full text")][:2],
        "errors": [{"source": r.source, "error": r.error} for r in results if r.error],
        "slowest": [{"source": r.source, "seconds": round(r.seconds, 3)} for r in timed[:3]],
    }


def hourly(hour: int, run: dict[str, Any]) -> dict[str, Any]:
    """One --hours run, in brief."""
    return {
        "hour": hour,
        "clock": run["clock"],
        "wall_s": run["wall_s"],
        "requests_made": run["requests_made"],
        "feeds_304": run["feeds_304"],
        "page_requests": run["page_requests"],
        "pages": run["pages"],
        "items": {"new": run["items"]["new"], "updated": run["items"]["updated"]},
        "non_loopback_attempts": run["non_loopback_attempts"],
        "errors": run["errors"],
    }


def tracemalloc_pass(
    fixtures_plan: Plan, args: argparse.Namespace, server: LocalServer, pages: str
) -> dict[str, Any]:
    """A separate cold run under tracemalloc, in a fresh TRACKER_HOME (it is much slower)."""
    with tempfile.TemporaryDirectory(prefix="tracker-bench-tm-") as tmp:
        settings = make_settings(Path(tmp), args)
        settings.sources_path.write_text(
            sources_yaml(fixtures_plan, server.base, full_text_for(pages)), encoding="utf-8"
        )
        config = load_config(settings.sources_path)
        store = SQLiteStateStore(settings.state_db)
        http = HttpClient(settings, transport=LoopbackOnly(server.port, pages))
        tracemalloc.start()
        started = time.perf_counter()
        try:
            collect(config, settings, store, http=http)
        finally:
            wall = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            http.close()
            store.close()
    return {"peak_traced_mb": round(peak / 1_048_576, 1), "wall_s": round(wall, 3)}


def make_settings(tmp: Path, args: argparse.Namespace) -> Settings:
    return Settings(
        home=tmp / "home",
        sources_path=tmp / "sources.yaml",
        workers=args.workers,
        per_host=args.per_host,
        timeout=args.timeout,
    )


def full_text_for(pages: str) -> str:
    return "never" if pages == "none" else "auto"


RUN_LABELS = ("cold", "warm", "run 3", "run 4")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=200, metavar="N", help="sources (200)")
    parser.add_argument(
        "--arxiv",
        type=int,
        default=None,
        metavar="K",
        help="arXiv sources among the N (default: about N/10, at most one per recorded query)",
    )
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, metavar="DIR")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--gzip", action="store_true", help="serve gzip-compressed bodies")
    parser.add_argument(
        "--no-304", action="store_true", help="never answer 304, so runs 2-4 re-parse everything"
    )
    pages = parser.add_mutually_exclusive_group()
    pages.add_argument(
        "--full-text",
        action="store_true",
        help="full_text: auto on feeds; linked pages are served from fixtures/html (slow)",
    )
    pages.add_argument(
        "--dead-pages",
        action="store_true",
        help="full_text: auto on feeds; every linked page fails as an unresolvable host does",
    )
    parser.add_argument(
        "--hours",
        type=int,
        default=0,
        metavar="N",
        help="after the four runs, N more, the clock moved on one hour before each (0)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="add a separate cold pass under tracemalloc (about 10x slower than run 1)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.sources < 1:
        parser.error("--sources must be at least 1")
    if args.hours < 0:
        parser.error("--hours must be 0 or more")

    fixtures = args.fixtures.resolve()
    try:
        plan = plan_sources(fixtures, args.sources, args.arxiv)
    except (FileNotFoundError, NotADirectoryError) as exc:
        print(f"bench: fixtures not found under {fixtures}: {exc}", file=sys.stderr)
        return 2
    page_mode = "dead" if args.dead_pages else "served" if args.full_text else "none"
    full_text = full_text_for(page_mode)
    html = sorted(str(p) for p in (fixtures / "html").glob("*.html"))
    if page_mode == "served" and not html:
        print(f"bench: no recorded pages under {fixtures / 'html'}", file=sys.stderr)
        return 2
    server = LocalServer(
        args.server, plan.routes, html if page_mode == "served" else [], args.gzip, not args.no_304
    )
    guard = NetGuard()
    guard.install()
    try:
        with tempfile.TemporaryDirectory(prefix="tracker-bench-") as tmp:
            settings = make_settings(Path(tmp), args)
            settings.sources_path.write_text(
                sources_yaml(plan, server.base, full_text), encoding="utf-8"
            )
            started = time.perf_counter()
            config = load_config(settings.sources_path)
            config_s = time.perf_counter() - started
            rss_before = peak_rss_mb()
            store = SQLiteStateStore(settings.state_db)
            clock = Clock()
            runs_of = Runs(config, settings, store, server, page_mode, clock, guard)
            hours: list[dict[str, Any]] = []
            try:
                runs = [run_once(RUN_LABELS[0], runs_of)]
                stored = store.count_items()
                runs.extend(run_once(label, runs_of) for label in RUN_LABELS[1:])
                stored_after = store.count_items()
                for hour in range(1, args.hours + 1):
                    clock.offset = timedelta(hours=hour)
                    hours.append(hourly(hour, run_once(f"+{hour} h", runs_of)))
            finally:
                store.close()
            db_bytes = sum(p.stat().st_size for p in settings.home.glob("state.sqlite3*"))
        rss_peak = peak_rss_mb()
        traced = tracemalloc_pass(plan, args, server, page_mode) if args.tracemalloc else None
    finally:
        guard.uninstall()
        server.close()

    report = {
        "benchmark": "tracker.collect.collect, four runs one straight after the other",
        "python": sys.version.split()[0],
        "fixtures": str(fixtures),
        "sources": {
            "total": len(plan.feeds) + len(plan.arxiv),
            "feed": len(plan.feeds),
            "arxiv": len(plan.arxiv),
            "feed_files": len(plan.feed_files),
            "full_text": full_text,
            "page_mode": page_mode,
            "article_pages": {
                "none": "none wanted",
                "dead": "every one fails (host not found)",
                "served": f"served locally from {len(html)} recorded pages",
            }[page_mode],
        },
        "left_out_fixtures": plan.left_out,
        "server": {
            "mode": args.server,
            "pid": server.pid,
            "conditional_get": not args.no_304,
            "gzip": args.gzip,
        },
        "settings": {
            "workers": settings.workers,
            "per_host": settings.per_host,
            "timeout": settings.timeout,
            "max_bytes": settings.max_bytes,
            "max_pages": settings.max_pages,
        },
        "config_parse_s": round(config_s, 3),
        "runs": runs,
        "hours": hours,
        "items_stored_after_cold": stored,
        "items_stored_after_run_4": stored_after,
        "state_db_bytes": db_bytes,
        "memory": {
            "peak_rss_mb_before_runs": round(rss_before, 1),
            "peak_rss_mb": round(rss_peak, 1),
            "tracemalloc": traced,
        },
        "non_loopback_attempts": guard.attempts[:10],
        "checks": checks(runs, hours, plan, args, page_mode, stored, stored_after, guard),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    every = [*runs, *({"run": f"+{h['hour']} h", "errors": h["errors"]} for h in hours)]
    failed = [(run["run"], e) for run in every for e in run["errors"]]
    if failed:
        print(
            f"\nbench: {len(failed)} source error(s); figures above are not comparable:",
            file=sys.stderr,
        )
        for label, e in failed:
            print(f"  [{label}] {e['source']}: {e['error']}", file=sys.stderr)
        return 1
    return 0


def checks(
    runs: list[dict[str, Any]],
    hours: list[dict[str, Any]],
    plan: Plan,
    args: argparse.Namespace,
    page_mode: str,
    stored: int,
    stored_after: int,
    guard: NetGuard,
) -> dict[str, bool | None]:
    """What must hold, computed from the runs; None where it does not apply."""
    later = runs[1:]
    conditional = not args.no_304
    quiet = runs[2]["page_requests"] == 0 and runs[2]["pages"]["failed"] == 0
    all_304 = runs[2]["feeds_304"] == len(plan.feeds)
    found: dict[str, bool | None] = {
        "no_errors": all(not r["errors"] for r in [*runs, *hours]),
        "stored_equals_new": stored == runs[0]["items"]["new"],
        # with --no-304 runs 2-4 re-parse every feed: nothing may look new or changed
        "feeds_304_on_runs_2_to_4": (
            all(r["feeds_304"] == len(plan.feeds) for r in later) if conditional else None
        ),
        # runs 2-4 store nothing new and update nothing: an article page arriving makes
        # its item whole (counted as a page fetched), it is not an update upstream
        "runs_2_to_4_nothing_new_or_updated": stored_after == stored
        and all(r["items"]["new"] == 0 and r["items"]["updated"] == 0 for r in later),
    }
    if page_mode == "dead":
        # the failed pages wait 1 h and the hosts that refused 3 are paused for at least 1 h, so
        # run 3 is one 304 per feed and no page request (with --no-304: one 200 per feed)
        if conditional:
            found["run_3_every_feed_304_no_page_request"] = quiet and all_304
        else:
            found["run_3_no_page_request"] = quiet
    return found | {
        # full_text: never: no run has any reason to ask another host for anything
        "no_page_requests": (
            all(r["page_requests"] == 0 for r in [*runs, *hours]) if page_mode == "none" else None
        ),
        # no socket connect or name lookup for anything but loopback, in any run
        # (refused page requests are refused by the transport before any socket)
        "no_internet": guard.count == 0,
    }


def print_report(r: dict[str, Any]) -> None:
    s, srv, st = r["sources"], r["server"], r["settings"]
    runs = r["runs"]
    where = f"separate process (pid {srv['pid']})" if srv["mode"] == "process" else "thread"
    print("tracker collect benchmark")
    print(f"  fixtures   {r['fixtures']}")
    print(
        f"  sources    {s['total']}: {s['feed']} feeds cycled over {s['feed_files']} files "
        f"(full_text: {s['full_text']}), {s['arxiv']} arXiv queries"
    )
    print(f"  pages      article pages: {s['article_pages']}")
    if r["left_out_fixtures"]:
        expected = [x for x in r["left_out_fixtures"] if ".expected_" in x]
        others = [x for x in r["left_out_fixtures"] if ".expected_" not in x]
        if expected:
            others.insert(0, f"{len(expected)} blogs/*.expected_*.json")
        print(f"  left out   {'; '.join(others)}")
    print(
        f"  server     {where} on 127.0.0.1, conditional GET "
        f"{'on' if srv['conditional_get'] else 'off'}, gzip {'on' if srv['gzip'] else 'off'}"
    )
    print(
        f"  settings   workers={st['workers']} per_host={st['per_host']} "
        f"timeout={st['timeout']:g}s max_bytes={st['max_bytes']} max_pages={st['max_pages']}"
    )
    print(f"  python     {r['python']}; sources.yaml parsed in {r['config_parse_s']:.3f} s")
    print()

    def counts(run: dict[str, Any], kind: str) -> str:
        c = run["by_kind"].get(kind, {})
        short = {"not_modified": "304", "error": "err", "skipped": "skip"}
        return " ".join(f"{short.get(k, k)}={v}" for k, v in c.items()) or "-"

    def served(run: dict[str, Any]) -> str:
        return " ".join(f"{k}:{v}" for k, v in run["server_responses"].items()) or "-"

    rows = [
        ("wall time (s)", lambda x: f"{x['wall_s']:.3f}"),
        ("client CPU (s)", lambda x: f"{x['client_cpu_s']:.3f}"),
        ("server CPU (s)", lambda x: f"{x['server_cpu_s']:.3f}"),
        ("sources ok", lambda x: str(x["sources"]["ok"])),
        ("sources not_modified", lambda x: str(x["sources"]["not_modified"])),
        ("sources error", lambda x: str(x["sources"]["error"])),
        ("  feeds", lambda x: counts(x, "feed")),
        ("  arxiv", lambda x: counts(x, "arxiv")),
        ("items new", lambda x: str(x["items"]["new"])),
        ("items updated", lambda x: str(x["items"]["updated"])),
        ("items unchanged", lambda x: str(x["items"]["unchanged"])),
        ("new items/s", lambda x: f"{x['new_items_per_s']:.1f}"),
        ("items/s (all seen)", lambda x: f"{x['items_per_s']:.1f}"),
        ("sources/s", lambda x: f"{x['sources_per_s']:.1f}"),
        ("requests made", lambda x: str(x["requests_made"])),
        ("requests answered", lambda x: str(x["requests"])),
        ("bytes (decoded)", lambda x: str(x["bytes"])),
        ("server responses", served),
        ("server bytes sent", lambda x: str(x["server_bytes_sent"])),
        ("feeds answering 304", lambda x: str(x["feeds_304"])),
        ("page requests", lambda x: str(x["page_requests"])),
        ("pages fetched", lambda x: str(x["pages"]["fetched"])),
        ("pages failed", lambda x: str(x["pages"]["failed"])),
        ("pages pending after", lambda x: str(x["pages"]["pending"])),
        ("pages given up after", lambda x: str(x["pages"]["given_up"])),
        ("sources w/ warnings", lambda x: str(x["warnings"])),
    ]  # fmt: skip
    heads = ["run 1 (cold)", "run 2 (warm)", "run 3", "run 4"]
    print(f"  {'':<22}" + "".join(f"{h:>20}" for h in heads))
    for title, cell in rows:
        print(f"  {title:<22}" + "".join(f"{cell(run):>20}" for run in runs))
    page_requests = {
        "none": "page requests: requests for another host than 127.0.0.1 (none expected)",
        "dead": "page requests: refused by the transport as unresolvable; they never "
        "reach a socket (requests made - requests answered)",
        "served": "page requests: rerouted to the local server and answered there",
    }
    print(f"  ({page_requests[s['page_mode']]})")
    if r["hours"]:
        print()
        print(f"  then {len(r['hours'])} more runs, the clock moved on one hour before each:")
        print(
            f"    {'hour':>6}{'page req':>10}{'feeds 304':>11}{'fetched':>9}{'failed':>8}"
            f"{'pending':>9}{'given up':>10}{'new':>5}{'upd':>5}{'wall s':>8}"
        )
        for h in r["hours"]:
            p = h["pages"]
            print(
                f"    {'+' + str(h['hour']) + ' h':>6}{h['page_requests']:>10}"
                f"{str(h['feeds_304']) + '/' + str(s['feed']):>11}{p['fetched']:>9}"
                f"{p['failed']:>8}{p['pending']:>9}{p['given_up']:>10}"
                f"{h['items']['new']:>5}{h['items']['updated']:>5}{h['wall_s']:>8.2f}"
            )
    print()
    m = r["memory"]
    print(
        f"  peak RSS   {m['peak_rss_mb']:.1f} MB (ru_maxrss of this process; "
        f"{m['peak_rss_mb_before_runs']:.1f} MB before the first run)"
    )
    if m["tracemalloc"]:
        t = m["tracemalloc"]
        print(
            f"  tracemalloc peak {t['peak_traced_mb']:.1f} MB "
            f"(separate cold pass, {t['wall_s']:.2f} s under tracing)"
        )
    print(
        f"  state db   {r['items_stored_after_cold']} items stored after run 1, "
        f"{r['items_stored_after_run_4']} after run 4, {r['state_db_bytes']} bytes on disk"
    )
    for run, head in zip(runs, heads, strict=True):
        slow = ", ".join(f"{x['source']} {x['seconds']:.2f}s" for x in run["slowest"])
        print(f"  slowest ({head}): {slow}")
    for w in runs[0]["warning_samples"]:
        print(f"  warning (cold): {w['source']}: {w['warning']}")
    for w in runs[0]["page_warning_samples"][:1]:
        print(f"  page warning (cold): {w['source']}: {w['warning']}")
    for what in r["non_loopback_attempts"]:
        print(f"  REFUSED off-loopback socket use: {what}")
    print(
        "  checks     "
        + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in r["checks"].items() if v is not None)
    )


if __name__ == "__main__":
    sys.exit(main())
