"""The HTTP client: every way a fetch can go wrong becomes a sentence, not a traceback."""

from __future__ import annotations

import threading

import httpx
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


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254, the metadata service
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:808:808::", True),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped
        ("::127.0.0.1", False),  # IPv4-compatible
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo to 10.0.0.1
        ("2001:4860:4860::8888", True),
    ],
)
def test_an_ipv6_address_carrying_an_ipv4_one_is_judged_by_it(address: str, public: bool) -> None:
    from tracker.collect.http import address_is_public

    assert address_is_public(address) is public


def test_a_host_that_does_not_resolve_is_not_public() -> None:
    from tracker.collect.http import is_public_host

    def failing(host: str) -> list[str]:
        raise OSError("Name or service not known")

    assert is_public_host("feeds.example", failing) is False
    assert is_public_host("feeds.example", lambda host: []) is False


def pretend(public: set[str]):
    """A resolver for loopback tests: the hosts in ``public`` resolve to a public address
    (the connection still goes to loopback), every other one to 127.0.0.1."""
    return lambda host: ["93.184.216.34"] if host in public else ["127.0.0.1"]


def test_a_public_feed_never_follows_a_redirect_inside_the_network(
    settings: Settings, server: FeedServer
) -> None:
    # Configured at a "public" address, answered by a redirect to this machine's name.
    inside = server.add("/metadata", "<rss/>").replace("127.0.0.1", "localhost")
    server.add("/feed", redirect=inside)
    refused = pytest.raises(FetchError, match=r"redirects to .*localhost.* private or local")
    with HttpClient(settings, resolver=pretend({"127.0.0.1"})) as http, refused:
        http.get(server.url("/feed"))  # not public_only: refused all the same
    assert server.hits_for("/metadata") == []


def test_a_private_feed_may_redirect_inside_its_own_network(
    settings: Settings, server: FeedServer
) -> None:
    inside = server.add("/new", "<rss/>").replace("127.0.0.1", "localhost")
    server.add("/old", redirect=inside)
    with HttpClient(settings, resolver=pretend(set())) as http:
        assert http.get(server.url("/old")).content == b"<rss/>"


def test_a_public_only_request_to_a_name_that_does_not_resolve_says_so(
    settings: Settings, server: FeedServer
) -> None:
    def failing(host: str) -> list[str]:
        raise OSError("Name or service not known")

    refused = pytest.raises(FetchError, match=r"could not look up 127\.0\.0\.1")
    with HttpClient(settings, resolver=failing) as http, refused:
        http.get(server.add("/f", "<rss/>"), public_only=True)
    assert server.hits_for("/f") == []


def test_a_judged_request_connects_to_the_address_that_was_judged(settings: Settings) -> None:
    # A rebinding host answers a public address to the first lookup and this machine to
    # the next: the connection must go where the check looked, resolved once.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    lookups: list[str] = []

    def rebinding(host: str) -> list[str]:
        lookups.append(host)
        return next(answers)

    seen: list[httpx.Request] = []

    def network(request: httpx.Request) -> httpx.Response:  # the wire, not the code tested
        seen.append(request)
        return httpx.Response(200, text="<rss/>")

    transport = httpx.MockTransport(network)
    with HttpClient(settings, transport=transport, resolver=rebinding) as http:
        response = http.get("https://feeds.example/rss", public_only=True)

    assert lookups == ["feeds.example"]
    (sent,) = seen
    assert sent.url.host == "93.184.216.34" and sent.headers["host"] == "feeds.example"
    assert sent.extensions["sni_hostname"] == "feeds.example"
    assert response.url == "https://feeds.example/rss"  # as asked, for links and redirects
