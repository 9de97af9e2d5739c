"""Article pages as their own queue: an unchanged feed is one 304, dead pages are left alone.

The runs here are real collects (SQLite, HTTP on loopback) with the clock injected, an
hour apart as a feed's default interval would have them. Hosts other than 127.0.0.1 are
names under ``.test`` that a small transport sends to the same local server (so that a
page host and a feed host can differ), and names under ``.invalid`` fail as a name that
does not resolve fails.
"""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from storage.state import SQLiteStateStore
from tests.conftest import DATA, FeedServer
from tracker.cli import main
from tracker.cli.collect import describe
from tracker.collect import collect
from tracker.collect.http import HttpClient, retry_after
from tracker.collect.pages import (
    HostBook,
    PageFailure,
    PagePolicy,
    fair_shares,
    page_failure,
)
from tracker.config import parse_config
from tracker.errors import FetchError, HTTPStatusError, TooLargeError
from tracker.models import PageTask, SourceResult, Status
from tracker.settings import Settings

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ARTICLE = (DATA / "article.html").read_bytes()
#: A small page, for the tests that read hundreds of them.
SHORT = (
    b"<html><head><title>A post</title></head><body><article><h1>A post</h1>"
    + b"<p>The whole post, far longer than its teaser, with every detail in it.</p>" * 8
    + b"</article></body></html>"
)


class Clock:
    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class LoopbackNames(httpx.BaseTransport):
    """``*.test`` hosts are the local server under another name; ``*.invalid`` hosts do not
    resolve. Nothing leaves the machine."""

    def __init__(self, server: FeedServer) -> None:
        self._inner = httpx.HTTPTransport()
        self._port = server.httpd.server_address[1]
        self.unresolved: list[str] = []
        #: Every article page asked for (paths under /p/), counted as it is sent: a page
        #: that never answers is counted too.
        self.pages: list[str] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if request.url.path.startswith("/p/"):
            with self._lock:
                self.pages.append(str(request.url))
        if host.endswith(".invalid"):
            self.unresolved.append(str(request.url))
            raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)
        if host.endswith(".test"):
            request.url = request.url.copy_with(host="127.0.0.1", port=self._port)
        return self._inner.handle_request(request)


def teasers(links: list[str], title: str = "News") -> str:
    """An RSS feed whose entries are all teasers, one per link."""
    items = "".join(
        f"<item><title>Story {i}</title><link>{link}</link><guid>{title}-{i}</guid>"
        f"<description>Story {i} begins here. Read more…</description></item>"
        for i, link in enumerate(links)
    )
    return f'<rss version="2.0"><channel><title>{title}</title>{items}</channel></rss>'


@dataclass
class Run:
    results: dict[str, SourceResult]
    page_requests: int


class Collector:
    """Consecutive ``tracker collect`` runs over one state store, counting page requests."""

    def __init__(self, server: FeedServer, settings: Settings, sources: str, clock: Clock):
        self.server = server
        self.settings = settings
        self.config = parse_config(sources)
        self.clock = clock
        self.transport = LoopbackNames(server)
        self.store = SQLiteStateStore(settings.state_db)

    def page_requests(self) -> int:
        return len(self.transport.pages)

    def run(self) -> Run:
        before = self.page_requests()
        http = HttpClient(self.settings, transport=self.transport)
        try:
            results = collect(self.config, self.settings, self.store, now=self.clock, http=http)
        finally:
            http.close()
        return Run({r.source: r for r in results}, self.page_requests() - before)

    def runs(self, n: int, **apart: float) -> list[Run]:
        """``n`` runs, the clock moved on by ``apart`` after each."""
        done = []
        for _ in range(n):
            done.append(self.run())
            self.clock.advance(**apart)
        return done

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """A short timeout, so that a page that never answers costs half a second, not twenty."""
    return Settings(home=settings.home, sources_path=settings.sources_path, timeout=0.5)


@pytest.fixture
def collector_for(server: FeedServer, quick: Settings):
    made: list[Collector] = []

    def make(sources: str, clock: Clock | None = None) -> Collector:
        made.append(Collector(server, quick, sources, clock or Clock()))
        return made[-1]

    yield make
    for c in made:
        c.close()


# --- the policy, pure ---------------------------------------------------------------


def test_a_failing_page_is_asked_again_after_1_4_and_16_hours_then_left_alone() -> None:
    policy = PagePolicy()
    task = PageTask("i", "https://x.example/a")
    failure = PageFailure("x.example answered 500", permanent=False)
    waits = []
    now = NOW
    for _ in range(4):
        task = policy.after_failure(task, failure, now)
        if task.next_attempt:
            waits.append(task.next_attempt - now)
            now = task.next_attempt
    assert waits == [timedelta(hours=1), timedelta(hours=4), timedelta(hours=16)]
    assert task.gave_up and task.attempts == 4 and not task.due(now + timedelta(days=30))


def test_an_answer_that_will_not_change_gives_up_at_once() -> None:
    for exc in (
        HTTPStatusError("403", 403),
        HTTPStatusError("404", 404),
        HTTPStatusError("410", 410),
        HTTPStatusError("401", 401),
        FetchError("x is application/pdf, not a web page", transient=False),
        FetchError("x points to a private or local address", transient=False),
        TooLargeError("too big"),
    ):
        task = PagePolicy().after_failure(PageTask("i", "u"), page_failure(exc), NOW)
        assert task.gave_up and task.attempts == 1, exc
    for exc in (HTTPStatusError("500", 500), FetchError("timed out"), HTTPStatusError("429", 429)):
        task = PagePolicy().after_failure(PageTask("i", "u"), page_failure(exc), NOW)
        assert not task.gave_up and task.next_attempt == NOW + timedelta(hours=1), exc


def test_a_retry_after_sets_the_next_attempt_and_still_counts_as_one() -> None:
    exc = HTTPStatusError("429", 429, retry_after=timedelta(seconds=120))
    task = PagePolicy().after_failure(PageTask("i", "u", attempts=2), page_failure(exc), NOW)
    assert task.attempts == 3 and task.next_attempt == NOW + timedelta(seconds=120)
    task = PagePolicy().after_failure(task, page_failure(exc), NOW)
    assert task.gave_up  # a page that answers 429 for ever is not asked for ever


def test_retry_after_is_read_as_seconds_or_a_date_and_capped_at_a_day() -> None:
    assert retry_after({"retry-after": "120"}) == timedelta(seconds=120)
    date = email.utils.format_datetime(NOW + timedelta(minutes=5), usegmt=True)
    assert retry_after({"retry-after": date}, now=NOW) == timedelta(minutes=5)
    assert retry_after({"retry-after": "99999999"}) == timedelta(days=1)
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_fair_shares_give_nobody_more_than_asked_and_share_the_rest() -> None:
    assert fair_shares(20, {"a": 300, "b": 5}) == {"a": 15, "b": 5}
    assert fair_shares(20, {"a": 300, "b": 300, "c": 300}) == {"a": 7, "b": 7, "c": 6}
    assert fair_shares(20, {"a": 1, "b": 2, "c": 300}) == {"a": 1, "b": 2, "c": 17}
    assert fair_shares(20, {"a": 3}) == {"a": 3}
    assert fair_shares(0, {"a": 3}) == {"a": 0}


def refuse(book: HostBook, host: str = "x.example") -> bool:
    """One page request to ``host`` that it refuses; whether the request was allowed."""
    if not book.begin("s", host):
        return False
    book.end(host, fetched=False, refused=True)
    return True


def test_a_host_that_refuses_three_pages_gets_no_page_request_for_an_hour() -> None:
    clock = Clock()
    book = HostBook(clock)
    assert [refuse(book) for _ in range(4)] == [True, True, True, False]
    assert "refused 3 pages" in (book.closed("x.example") or "")
    assert book.closed("y.example") is None
    next_run = HostBook(clock, book.changes()[0])  # as the state store hands them over
    assert next_run.closed("x.example") and next_run.waiting("x.example") is None  # feeds may
    clock.advance(hours=1, seconds=1)
    assert next_run.closed("x.example") is None


def test_requests_in_flight_count_until_the_host_has_answered_one() -> None:
    book = HostBook(lambda: NOW)
    assert [book.begin(f"s{i}", "x.example") for i in range(5)] == [True] * 3 + [False] * 2
    book.end("x.example", fetched=True, refused=False)
    assert book.begin("s4", "x.example")  # it answers: no longer held to three


def strike(book: HostBook, host: str = "x.example") -> HostBook:
    """One run in which ``host`` refuses three pages; the next run's book."""
    for _ in range(3):
        assert refuse(book, host)
    return HostBook(book.now, book.changes()[0])


def test_a_host_that_refuses_run_after_run_is_paused_longer_and_given_up_after_a_day() -> None:
    clock = Clock()
    book = HostBook(clock)
    pauses = []
    for _ in range(3):
        book = strike(book)
        wait = book.waiting("x.example", page=True)
        assert wait is not None and book.given_up("x.example") is None
        pauses.append(wait.until - clock.now)
        clock.now = wait.until
    assert pauses == [timedelta(hours=1), timedelta(hours=4), timedelta(hours=16)]
    book = strike(book)
    assert "refused every page" in (book.given_up("x.example") or "")


def test_a_page_fetched_from_a_host_clears_its_strikes() -> None:
    clock = Clock()
    book = strike(HostBook(clock))
    clock.advance(hours=1, seconds=1)
    book = strike(book)
    clock.advance(hours=4, seconds=1)
    assert book.begin("s", "x.example")
    book.end("x.example", fetched=True, refused=False)
    for _ in range(3):
        assert refuse(book)  # refusals after a page came in the same run: no strike
    fresh, cleared = book.changes()
    assert cleared == ["x.example"] and fresh == []
    after = strike(HostBook(clock))
    wait = after.waiting("x.example", page=True)
    assert wait is not None and wait.strikes == 1


def test_a_page_that_is_gone_is_its_own_answer_not_the_host_refusing() -> None:
    assert not page_failure(HTTPStatusError("404", 404)).host_refused
    assert not page_failure(HTTPStatusError("410", 410)).host_refused
    assert page_failure(HTTPStatusError("403", 403)).host_refused
    assert page_failure(FetchError("could not look up x.example")).host_refused


def test_the_page_budget_of_a_host_is_split_between_the_sources_waiting_on_it() -> None:
    book = HostBook(lambda: NOW, pages_per_host=20)
    book.want("a", {"x.example": 100})
    book.want("b", {"x.example": 100})
    a = sum(book.take("a", "x.example") for _ in range(30))
    b = sum(book.take("b", "x.example") for _ in range(30))
    assert (a, b) == (10, 10)
    book.want("c", {"x.example": 5})
    assert not book.take("c", "x.example")  # the host's 20 are spent


# --- real collects, run after run -------------------------------------------------------


def test_pages_that_always_fail_are_left_alone_and_every_feed_settles_on_304s(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    never = threading.Event()  # the slow page never answers: a timeout
    server.add("/p/forbidden", "no", status=403, content_type="text/html")
    server.add("/p/missing", "no", status=404, content_type="text/html")
    server.add("/p/broken", "oops", status=500, content_type="text/html")
    server.add("/p/slow", ARTICLE, content_type="text/html", hold=never)
    news = server.add(
        "/news.xml",
        teasers(
            [
                "http://paywall.test/p/forbidden",
                "http://paywall.test/p/missing",
                "http://flaky.test/p/broken",
                "http://slow.test/p/slow",
                "http://gone.invalid/p/post",
            ]
        ),
    )
    blog = server.add(
        "/blog.xml",
        teasers(["http://paywall.test/p/forbidden?x=1", "http://flaky.test/p/broken?x=1"], "Blog"),
    )
    c = collector_for(
        f"sources:\n  - {{name: news, kind: feed, url: '{news}'}}\n"
        f"  - {{name: blog, kind: feed, url: '{blog}'}}\n"
    )
    runs = c.runs(30, hours=1)  # a day and a quarter at the default hourly interval
    feeds_304 = [all(r.status is Status.NOT_MODIFIED for r in run.results.values()) for run in runs]
    requests = [run.page_requests for run in runs]
    assert requests[0] > 0 and not feeds_304[0]
    last = max(i for i, n in enumerate(requests) if n)
    assert last <= 22, requests  # the fourth failure comes 21 hours after the first
    assert all(feeds_304[1:]), "an unchanged feed is a 304 whatever its pages do"
    assert sum(requests) <= 4 * 5 + 2, requests
    # the permanent answers were asked once; the others at most four times
    assert len(server.hits_for("/p/forbidden")) == 1
    assert len(server.hits_for("/p/missing")) == 1
    assert len([u for u in c.transport.unresolved if "gone.invalid" in u]) <= 4
    assert len([u for u in c.transport.pages if "/p/slow" in u]) <= 4
    counts = c.store.page_counts()
    assert (counts["news"].pending, counts["news"].gave_up) == (0, 5)
    assert (counts["blog"].pending, counts["blog"].gave_up) == (0, 2)
    items = c.store.items("news")
    assert len(items) == 5 and all(i.text.startswith("Story") for i in items)  # teasers kept
    never.set()


def test_the_third_collect_in_a_row_is_all_304s_and_asks_for_no_page(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    server.add("/p/forbidden", "no", status=403, content_type="text/html")
    dead = server.add("/dead.xml", teasers([f"http://dead.invalid/p/{i}" for i in range(20)]))
    paywall = server.add(
        "/paywall.xml", teasers([f"http://paywall.test/p/forbidden?{i}" for i in range(20)])
    )
    c = collector_for(
        f"sources:\n  - {{name: dead, kind: feed, url: '{dead}'}}\n"
        f"  - {{name: paywall, kind: feed, url: '{paywall}'}}\n"
    )
    runs = c.runs(3, minutes=5)
    assert runs[0].page_requests == 6  # three refusals per host, then the host is left alone
    assert [r.page_requests for r in runs[1:]] == [0, 0]
    assert {r.status for r in runs[2].results.values()} == {Status.NOT_MODIFIED}
    assert describe(runs[2].results["dead"]).endswith(
        "(304 Not Modified); 20 article pages pending"
    )


def test_a_dead_host_costs_a_dozen_requests_a_week_however_many_pages_link_to_it(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    dead = server.add("/dead.xml", teasers([f"http://dead.invalid/p/{i}" for i in range(60)]))
    c = collector_for(f"sources:\n  - {{name: dead, kind: feed, url: '{dead}'}}\n")
    runs = c.runs(26, hours=1)
    requests = [r.page_requests for r in runs]
    assert sum(requests) == 12, requests  # three a strike: now, +1 h, +5 h, +21 h
    assert [i for i, n in enumerate(requests) if n] == [0, 1, 5, 21]
    counts = c.store.page_counts()["dead"]
    # the pages it refused keep their teasers; those never asked wait for the host
    assert (counts.pending, counts.gave_up) == (48, 12)
    assert "refused every page" in " ".join(r for r, _ in counts.gave_up_reasons)
    c.clock.advance(days=7)
    assert c.run().page_requests == 3  # a week on, the host is given three more chances


def test_a_feed_of_300_teasers_drains_at_the_cap_while_the_feed_answers_304(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    server.add("/p/article", SHORT, content_type="text/html")
    feed = server.add(
        "/big.xml", teasers([f"http://blog.test/p/article?n={i}" for i in range(300)])
    )
    c = collector_for(f"sources:\n  - {{name: big, kind: feed, url: '{feed}'}}\n")
    runs = c.runs(16, hours=1)
    assert [r.page_requests for r in runs] == [20] * 15 + [0]
    statuses = [r.results["big"].status for r in runs]
    assert statuses == [Status.OK] + [Status.NOT_MODIFIED] * 15
    assert [r.results["big"].pages_pending for r in runs[:3]] == [280, 260, 240]
    assert runs[-1].results["big"].pages_pending == 0
    items = c.store.items("big")
    assert len(items) == 300 and all(i.extra["full_text"] for i in items)
    asked = [h.path for h in server.hits if h.path.startswith("/p/article")]
    assert len(asked) == len(set(asked)) == 300  # every page once, none twice
    assert "20 article pages fetched, 260 pending" in describe(runs[1].results["big"])


def test_a_429_with_retry_after_keeps_the_host_waiting_that_long(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    server.add(
        "/p/limited", "slow down", status=429, content_type="text/html",
        headers={"Retry-After": "120"},
    )  # fmt: skip
    feed = server.add("/f.xml", teasers(["http://busy.test/p/limited"]))
    c = collector_for(f"sources:\n  - {{name: f, kind: feed, url: '{feed}'}}\n")
    first = c.run()
    assert first.page_requests == 1 and "asked us to wait 120 s" in " ".join(
        first.results["f"].warnings
    )
    c.clock.advance(seconds=60)
    assert c.run().page_requests == 0  # still waiting, even in a new run
    server.add("/p/limited", ARTICLE, content_type="text/html")
    c.clock.advance(seconds=61)
    assert c.run().page_requests == 1
    (item,) = c.store.items("f")
    assert item.extra["full_text"] is True


def test_a_feed_answering_429_is_not_tried_before_its_retry_after(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    feed = server.add(
        "/f.xml", "busy", status=429, content_type="text/plain", headers={"Retry-After": "7200"}
    )
    c = collector_for(f"sources:\n  - {{name: f, kind: feed, url: '{feed}'}}\n")
    result = c.run().results["f"]
    assert result.status is Status.ERROR and "asked us to wait 120 min" in str(result.error)
    assert result.retry_after == NOW + timedelta(hours=2)  # not the 15-minute backoff


def test_a_feed_that_moved_permanently_is_reported_once_with_the_url_to_write(
    server: FeedServer, collector_for: Callable[..., Collector], monkeypatch, capsys
) -> None:
    new = server.add("/new.xml", (DATA / "rss2.xml").read_bytes())
    old = server.add("/old.xml", redirect="/new.xml", redirect_status=301)
    server.add("/detour.xml", redirect="/new.xml", redirect_status=302)
    c = collector_for(
        f"sources:\n  - {{name: moved, kind: feed, url: '{old}'}}\n"
        f"  - {{name: detour, kind: feed, url: '{server.url('/detour.xml')}'}}\n"
    )
    first = c.run().results
    assert first["moved"].moved_to == new and first["moved"].new == 2
    assert any(f"url: {new}" in w for w in first["moved"].warnings)
    assert first["detour"].moved_to is None  # a 302 is a detour, not a move
    c.clock.advance(hours=1)
    second = c.run().results["moved"]
    assert second.status is Status.NOT_MODIFIED and second.moved_to is None
    assert not any("moved" in w for w in second.warnings)  # said once
    monkeypatch.setenv("TRACKER_HOME", str(c.settings.home))
    assert main(["stats"]) == 0
    assert f"moved permanently to {new}" in capsys.readouterr().out


def two_sources_on_one_host(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> Collector:
    """Sources a and b, 30 teasers each, every page on one host."""
    server.add("/p/article", SHORT, content_type="text/html")
    a = server.add("/a.xml", teasers([f"http://one.test/p/article?a={i}" for i in range(30)], "A"))
    b = server.add("/b.xml", teasers([f"http://one.test/p/article?b={i}" for i in range(30)], "B"))
    return collector_for(
        f"sources:\n  - {{name: a, kind: feed, url: '{a}'}}\n"
        f"  - {{name: b, kind: feed, url: '{b}'}}\n"
    )


def test_one_hosts_pages_are_shared_fairly_between_its_sources(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    c = two_sources_on_one_host(server, collector_for)
    first = c.run()
    assert first.page_requests == 20  # one host, one budget, however many sources
    c.clock.advance(hours=1)
    second = c.run()
    assert second.page_requests == 20
    assert [second.results[n].pages_fetched for n in ("a", "b")] == [10, 10]


def test_a_page_that_comes_back_is_fetched_once_its_backoff_allows(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    server.add("/p/flaky", "oops", status=500, content_type="text/html")
    feed = server.add("/f.xml", teasers(["http://flaky.test/p/flaky"]))
    c = collector_for(f"sources:\n  - {{name: f, kind: feed, url: '{feed}'}}\n")
    assert c.run().page_requests == 1
    c.clock.advance(minutes=30)
    assert c.run().page_requests == 0  # backing off for an hour
    server.add("/p/flaky", ARTICLE, content_type="text/html")
    c.clock.advance(minutes=31)
    run = c.run()
    assert run.page_requests == 1 and run.results["f"].status is Status.NOT_MODIFIED
    (item,) = c.store.items("f")
    assert item.extra["full_text"] is True and "ninety-one percent" in item.text
    assert c.store.page_tasks("f") == {}


def test_stats_says_which_items_keep_their_teaser_for_good(
    server: FeedServer, collector_for: Callable[..., Collector], monkeypatch, capsys
) -> None:
    server.add("/p/forbidden", "no", status=403, content_type="text/html")
    feed = server.add("/f.xml", teasers(["http://paywall.test/p/forbidden"]))
    c = collector_for(f"sources:\n  - {{name: f, kind: feed, url: '{feed}'}}\n")
    c.run()
    monkeypatch.setenv("TRACKER_HOME", str(c.settings.home))
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "1 item keeps its teaser for good" in out and "403 Forbidden" in out
    assert main(["stats", "--json"]) == 0
    import json

    (source,) = json.loads(capsys.readouterr().out)["sources"]
    assert source["pages_pending"] == 0 and source["pages_given_up"] == 1


def test_a_page_answering_429_is_given_up_after_four_tries_and_never_blocks_the_feeds(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    server.add(
        "/p/busy", "slow down", status=429, content_type="text/html",
        headers={"Retry-After": "60"},
    )  # fmt: skip
    page = f"{server.base}/p/busy"  # the page on the feeds' own host
    a = server.add("/a.xml", teasers([page], "A"))
    b = server.add("/b.xml", teasers([], "B"))
    c = collector_for(
        f"sources:\n  - {{name: a, kind: feed, url: '{a}'}}\n"
        f"  - {{name: b, kind: feed, url: '{b}'}}\n"
    )
    runs = c.runs(8, minutes=5)
    assert [r.page_requests for r in runs] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert all(res.status is not Status.ERROR for r in runs for res in r.results.values())
    assert c.store.page_counts()["a"].gave_up == 1


def test_a_source_whose_feed_fails_leaves_its_share_of_the_hosts_pages(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    c = two_sources_on_one_host(server, collector_for)
    c.run()
    server.add("/a.xml", "oops", status=500)
    c.clock.advance(hours=1)
    waiting = c.store.pages_pending("b")
    second = c.run()
    assert second.results["a"].status is Status.ERROR
    assert waiting >= 10 and second.results["b"].pages_fetched == min(20, waiting)


def test_a_dead_host_gets_three_requests_a_run_however_many_threads_ask(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    never = threading.Event()
    server.add("/p/slow", SHORT, content_type="text/html", hold=never)
    feeds = [
        server.add(f"/f{i}.xml", teasers([f"http://slow.test/p/slow?{i}-{j}" for j in range(3)]))
        for i in range(6)
    ]
    c = collector_for(
        "sources:\n"
        + "".join(f"  - {{name: f{i}, kind: feed, url: '{u}'}}\n" for i, u in enumerate(feeds))
    )
    assert c.run().page_requests == 3
    never.set()


def test_an_entry_that_only_moved_its_timestamp_keeps_its_article(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    server.add("/p/post", ARTICLE, content_type="text/html")

    def feed(updated: str, words: str = "Story 0 begins here. Read more…") -> str:
        return (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>e1</id>'
            f'<title>Story 0</title><link href="http://blog.test/p/post"/><updated>{updated}</updated>'
            f"<summary>{words}</summary></entry></feed>"
        )

    url = server.add("/f.atom", feed("2026-11-24T07:00:00Z"), content_type="application/atom+xml")
    c = collector_for(f"sources:\n  - {{name: f, kind: feed, url: '{url}'}}\n")
    c.run()
    server.add("/p/post", "oops", status=500, content_type="text/html")  # the page breaks
    server.add("/f.atom", feed("2026-11-24T09:00:00Z"), content_type="application/atom+xml")
    c.clock.advance(hours=1)
    bumped = c.run()
    (item,) = c.store.items("f")
    assert "ninety-one percent" in item.text and bumped.page_requests == 0
    assert bumped.results["f"].updated == 0
    server.add(
        "/f.atom",
        feed("2026-11-24T10:00:00Z", "Story 0, corrected, begins here. Read more…"),
        content_type="application/atom+xml",
    )
    c.clock.advance(hours=1)
    edited = c.run()
    (item,) = c.store.items("f")
    assert edited.results["f"].updated == 1 and edited.page_requests == 1  # new words: news
    assert item.text.startswith("Story 0, corrected")  # until its page comes back


def test_an_article_arriving_is_not_counted_as_an_update(
    server: FeedServer, collector_for: Callable[..., Collector]
) -> None:
    server.add("/p/article", SHORT, content_type="text/html")
    feed = server.add("/f.xml", teasers([f"http://blog.test/p/article?{i}" for i in range(25)]))
    c = collector_for(f"sources:\n  - {{name: f, kind: feed, url: '{feed}'}}\n")
    c.run()
    c.clock.advance(hours=1)
    second = c.run().results["f"]
    assert second.pages_fetched == 5 and second.updated == 0
