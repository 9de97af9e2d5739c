"""Shared test fixtures: a private state directory per test and real HTTP servers on loopback."""

from __future__ import annotations

import email.utils
import hashlib
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests import loopback_http
from tests.openai_server import OpenAIServer
from tracker.settings import Settings

HERE = Path(__file__).parent
DATA = HERE / "data"
SHARED_FIXTURES = HERE.parent.parent / "shared" / "fixtures"
#: The `tracker` command installed beside the interpreter running the tests: what a user
#: runs, each call a new process.
TRACKER_COMMAND = str(Path(sys.executable).parent / "tracker")


@pytest.fixture(autouse=True)
def tracker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state directory; nothing touches the user's."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRACKER_HOME", str(home))
    # Never the repository's sources.yaml: it follows real sites, and tests stay offline.
    monkeypatch.setenv("TRACKER_SOURCES", str(tmp_path / "sources.yaml"))
    for name in (
        "GITHUB_TOKEN",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "CHROMA_URL",
        "TRACKER_EMBEDDING_MODEL",
        "TRACKER_SUMMARY_MODEL",
        "TRACKER_DEDUPE_DAYS",
        "DISCORD_TOKEN",
        "DISCORD_CHANNEL_ID",
        "DISCORD_GUILD_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def settings(tracker_home: Path, tmp_path: Path) -> Settings:
    return Settings(home=tracker_home, sources_path=tmp_path / "sources.yaml", timeout=2.0)


@dataclass
class Route:
    """What the test server answers on one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)
    #: Serve ETag/Last-Modified and answer 304 to matching conditional requests.
    conditional: bool = True
    #: Block before answering until this event is set (for timeouts and kills).
    hold: threading.Event | None = None
    #: Redirect to this path (or URL) with this status instead of answering.
    redirect: str | None = None
    redirect_status: int = 301
    #: Stream this many bytes of filler with no Content-Length (size cap tests).
    stream_bytes: int = 0
    omit_length: bool = False


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    status: int


class FeedServer:
    """A real HTTP server on 127.0.0.1 serving routes that tests register."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        # Looked up at each request: a test may wrap ``_handle`` after the server starts.
        self.httpd, self.thread = loopback_http.start(lambda r: self._handle(r), "GET")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kwargs: object) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def hits_for(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        route = self.routes.get(path) or self.routes.get(urlsplit(path).path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if route is None:
            self._send(request, path, headers, 404, b"not found", "text/plain", {})
            return
        if route.hold is not None:
            route.hold.wait(30)
        if route.redirect:
            target = route.redirect if "://" in route.redirect else self.url(route.redirect)
            self._send(
                request,
                path,
                headers,
                route.redirect_status,
                b"",
                "text/plain",
                {"Location": target},
            )
            return
        extra = dict(route.headers)
        if route.conditional and route.status == 200:
            etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
            modified = email.utils.formatdate(1_700_000_000, usegmt=True)
            extra.update({"ETag": etag, "Last-Modified": modified})
            if headers.get("if-none-match") == etag or (
                "if-none-match" not in headers and headers.get("if-modified-since") == modified
            ):
                self._send(request, path, headers, 304, b"", None, extra)
                return
        if route.stream_bytes:
            self._stream(request, path, headers, route)
            return
        self._send(
            request,
            path,
            headers,
            route.status,
            route.body,
            route.content_type,
            extra,
            omit_length=route.omit_length,
        )

    def _send(
        self,
        request: BaseHTTPRequestHandler,
        path: str,
        headers: dict[str, str],
        status: int,
        body: bytes,
        content_type: str | None,
        extra: dict[str, str],
        omit_length: bool = False,
    ) -> None:
        with self._lock:
            self.hits.append(Hit(path, headers, status))
        request.send_response(status)
        if content_type:
            request.send_header("Content-Type", content_type)
        for key, value in extra.items():
            request.send_header(key, value)
        if omit_length:
            request.send_header("Connection", "close")
        else:
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if status != 304:
            request.wfile.write(body)
        if omit_length:
            request.close_connection = True

    def _stream(
        self, request: BaseHTTPRequestHandler, path: str, headers: dict[str, str], route: Route
    ) -> None:
        with self._lock:
            self.hits.append(Hit(path, headers, 200))
        request.send_response(200)
        request.send_header("Content-Type", route.content_type)
        request.send_header("Connection", "close")
        request.end_headers()
        chunk = b"<!-- filler -->" * 4096
        sent = 0
        try:
            while sent < route.stream_bytes:
                request.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        request.close_connection = True

    def close(self) -> None:
        for route in self.routes.values():
            if route.hold is not None:
                route.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    yield srv
    srv.close()


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """The fake OpenAI-compatible API on loopback (tests/openai_server.py), closed after."""
    srv = OpenAIServer()
    yield srv
    srv.close()


@pytest.fixture
def write_sources(tmp_path: Path) -> Callable[[str], Path]:
    """Write a sources.yaml for the test and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "sources.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


# --- a small world of sources: two papers, a blog post linking one, a release ------------

ABSTRACT = (
    "We present a method for speculative decoding in which a small draft model proposes tokens "
    "that a large target model verifies in parallel. On summarisation and code generation the "
    "method doubles decoding throughput without changing the output distribution. We analyse "
    "when drafts are accepted and how batch size changes the speed-up."
)
OTHER = (
    "We study protein structure prediction with graph neural networks trained on molecular "
    "dynamics trajectories. The model predicts side-chain conformations and improves accuracy on "
    "membrane proteins. Training data and code are released."
)


#: The world's items are dated a few hours before the real now: they are news, whatever day
#: the suite runs (a digest leaves out stories older than digest.max_age).
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def blog_feed(server: FeedServer) -> str:
    return f"""<rss version="2.0"><channel><title>Inference Notes</title>
      <item><title>Our paper on faster decoding is out</title><link>{server.url("/posts/decoding")}</link>
        <guid>p1</guid><pubDate>{email.utils.format_datetime(RECENT, usegmt=True)}</pubDate>
        <description><![CDATA[<p>Read the paper <a href="https://arxiv.org/pdf/2411.01234v1">on arXiv</a>.
        Speculative decoding with a small draft model doubles throughput for large models without
        changing outputs. We explain when drafts are accepted, how batching interacts with long
        drafts, and what this means for serving costs in production systems.</p>]]></description>
      </item></channel></rss>"""


def releases_feed() -> str:
    entry = """<entry><id>tag:github.com,2008:Repository/1/{tag}</id><updated>{when}</updated>
      <link rel="alternate" type="text/html" href="https://github.com/acme/infer/releases/tag/{tag}"/>
      <title>{tag}</title><content type="html">&lt;h2&gt;Breaking changes&lt;/h2&gt;&lt;ul&gt;&lt;li&gt;Removed the --legacy-cache flag.&lt;/li&gt;&lt;/ul&gt;&lt;ul&gt;&lt;li&gt;Faster prefix caching.&lt;/li&gt;&lt;/ul&gt;</content></entry>"""
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>r</title>'
        + entry.format(tag="v1.0.0", when=(RECENT - timedelta(hours=1)).isoformat())
        + "</feed>"
    )


@pytest.fixture
def world(server: FeedServer, write_sources, monkeypatch, tracker_home):
    from tests.test_arxiv import page

    papers = page(
        [
            {
                "id": "2411.01234",
                "title": "Faster Decoding with Draft Models",
                "abstract": ABSTRACT,
                "published": RECENT.isoformat(),
                "updated": RECENT.isoformat(),
            },
            {
                "id": "2411.05678",
                "title": "Faster Folding with Graph Models",
                "abstract": OTHER,
                "published": RECENT.isoformat(),
                "updated": RECENT.isoformat(),
            },
        ]
    )
    server.add("/api/query", papers, content_type="application/atom+xml")
    server.add("/blog.xml", blog_feed(server))
    server.add(
        "/posts/decoding",
        "<html><body><article><p>Speculative decoding post.</p></article></body></html>",
        content_type="text/html",
    )
    server.add("/releases.atom", releases_feed())
    path = write_sources(f"""
interests: [speculative decoding and LLM inference]
sources:
  - {{name: papers, kind: arxiv, query: "cat:cs.CL", url: "{server.url("/api/query")}", sort_by: relevance}}
  - {{name: blog, kind: feed, url: "{server.url("/blog.xml")}", full_text: never, weight: 1.5}}
  - {{name: infer, kind: github_releases, repo: acme/infer, url: "{server.url("/releases.atom")}"}}
""")
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    return server


@pytest.fixture
def point_discord_py_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    """discord.py's REST base and default gateway, pointed at a loopback Discord
    (``tests/discord_loopback.py``)."""
    import yarl
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    def point(loopback: Any) -> None:
        monkeypatch.setattr(Route, "BASE", loopback.api_base)
        monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(loopback.gateway_url))

    return point
