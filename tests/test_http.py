"""The HTTP client: every way a fetch can go wrong becomes a sentence, not a traceback."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import FeedServer
from tracker.collect.http import HostLimiter, HostRule, HttpClient
from tracker.errors import FetchError, HTTPStatusError, TooLargeError
from tracker.models import Validators
from tracker.settings import Settings


@pytest.fixture
def client(settings: Settings):
    with HttpClient(settings) as http:
        yield http


def test_sends_a_descriptive_user_agent(client: HttpClient, server: FeedServer) -> None:
    client.get(server.add("/f", "<rss/>"))
    agent = server.hits_for("/f")[0].headers["user-agent"]
    assert agent.startswith("tracker/") and "+http" in agent


def test_conditional_get_turns_an_unchanged_resource_into_a_304(
    client: HttpClient, server: FeedServer
) -> None:
    url = server.add("/f", "<rss/>")
    first = client.get(url)
    assert first.status == 200 and first.validators.etag
    second = client.get(url, first.validators)
    assert second.not_modified and second.content == b""
    assert server.hits_for("/f")[1].headers["if-none-match"] == first.validators.etag


def test_last_modified_alone_is_enough_for_a_304(client: HttpClient, server: FeedServer) -> None:
    url = server.add("/f", "<rss/>")
    modified = client.get(url).validators.last_modified
    assert client.get(url, Validators(last_modified=modified)).not_modified


def test_follows_redirects_and_reports_the_final_url(
    client: HttpClient, server: FeedServer
) -> None:
    server.add("/old", redirect="/new")
    server.add("/new", "<rss/>")
    response = client.get(server.url("/old"))
    assert response.status == 200 and response.url.endswith("/new")


def test_a_redirect_loop_is_an_error(client: HttpClient, server: FeedServer) -> None:
    server.add("/a", redirect="/b")
    server.add("/b", redirect="/a")
    with pytest.raises(FetchError, match="redirects too many times"):
        client.get(server.url("/a"))


@pytest.mark.parametrize(
    ("status", "words"),
    [(404, "check the url"), (500, "try again later"), (403, "refuses access"), (410, "gone")],
)
def test_error_statuses_say_what_happened_and_what_to_do(
    client: HttpClient, server: FeedServer, status: int, words: str
) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        client.get(server.add("/f", "nope", status=status))
    assert caught.value.status == status and str(status) in str(caught.value)
    assert words in str(caught.value)
    assert caught.value.transient is (status >= 500)


def test_a_server_that_never_answers_times_out(server: FeedServer, tracker_home) -> None:
    hold = threading.Event()
    url = server.add("/slow", "<rss/>", hold=hold)
    quick = Settings(home=tracker_home, sources_path=tracker_home / "s.yaml", timeout=0.3)
    with HttpClient(quick) as http, pytest.raises(FetchError, match=r"timed out after 0\.3s"):
        http.get(url)
    hold.set()


def test_a_body_over_the_cap_is_refused_when_declared(server: FeedServer, tracker_home) -> None:
    small = Settings(home=tracker_home, sources_path=tracker_home / "s.yaml", max_bytes=1000)
    with HttpClient(small) as http, pytest.raises(TooLargeError, match="TRACKER_MAX_BYTES"):
        http.get(server.add("/big", b"x" * 5000))


def test_a_body_over_the_cap_is_refused_while_streaming(server: FeedServer, tracker_home) -> None:
    small = Settings(home=tracker_home, sources_path=tracker_home / "s.yaml", max_bytes=100_000)
    url = server.add("/endless", stream_bytes=50_000_000, conditional=False)
    with HttpClient(small) as http, pytest.raises(TooLargeError):
        http.get(url)


def test_a_refused_connection_is_explained(client: HttpClient) -> None:
    with pytest.raises(FetchError, match="refused the connection"):
        client.get("http://127.0.0.1:9/feed.xml")


def test_host_limiter_spaces_requests_to_hosts_that_ask_for_it() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = HostLimiter(
        rules={"slow.example": HostRule(1, 3.0)}, clock=lambda: clock[0], sleep=sleep
    )
    for _ in range(3):
        with limiter.slot("slow.example"):
            clock[0] += 0.5
    with limiter.slot("fast.example"):
        pass
    assert slept == [3.0, 3.0]


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.7", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_private_and_link_local_addresses_are_not_public(host: str, public: bool) -> None:
    from tracker.collect.http import is_public_host

    assert is_public_host(host) is public


def test_public_only_requests_refuse_local_addresses(
    client: HttpClient, server: FeedServer
) -> None:
    with pytest.raises(FetchError, match="private or local address"):
        client.get(server.add("/page", "<html></html>", content_type="text/html"), public_only=True)
    assert server.hits_for("/page") == []


def test_a_response_of_the_wrong_type_is_refused_before_its_body(
    client: HttpClient, server: FeedServer
) -> None:
    url = server.add("/paper.pdf", b"%PDF-1.7" + b"x" * 1000, content_type="application/pdf")
    with pytest.raises(FetchError, match="application/pdf, not a web page"):
        client.get(url, content_types=("text/html",))
