"""Polite HTTP: timeouts, a size cap, redirects, conditional GET and per-host limits.

Every collector fetches through ``HttpClient`` so that these rules hold for
all of them, and so that network failures become ``SourceError``s with
sentences a person can act on.
"""

from __future__ import annotations

import email.utils
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

import httpx

from tracker.errors import FetchError, HTTPStatusError, TooLargeError
from tracker.models import Validators
from tracker.settings import Settings


@dataclass(frozen=True)
class HostRule:
    """How gently to treat one host."""

    concurrency: int
    min_interval: float = 0.0


#: arXiv asks API users for one connection at a time and three seconds between requests.
DEFAULT_RULES: Mapping[str, HostRule] = {"export.arxiv.org": HostRule(1, 3.0)}


class HostLimiter:
    """At most N requests in flight per host, and a minimum gap where a host asks for one."""

    def __init__(
        self,
        per_host: int = 2,
        rules: Mapping[str, HostRule] = DEFAULT_RULES,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._per_host = per_host
        self._rules = dict(rules)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._not_before: dict[str, float] = {}

    def rule(self, host: str) -> HostRule:
        return self._rules.get(host, HostRule(self._per_host))

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        rule = self.rule(host)
        with self._lock:
            semaphore = self._slots.setdefault(host, threading.Semaphore(rule.concurrency))
        with semaphore:
            if rule.min_interval:
                wait = self._not_before.get(host, 0.0) - self._clock()
                if wait > 0:
                    self._sleep(wait)
            try:
                yield
            finally:
                if rule.min_interval:
                    self._not_before[host] = self._clock() + rule.min_interval


#: Request extension that asks for public addresses only (checked at every redirect hop).
PUBLIC_ONLY = "tracker_public_only"
#: Request extension holding the address first asked for: a redirect from a public address
#: may not lead to a private one, whatever ``public_only`` says.
FIRST_URL = "tracker_first_url"

Resolver = Callable[[str], list[str]]

#: NAT64's well-known prefix: its last 32 bits are an IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to (OSError or UnicodeError when it does not)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]).split("%")[0] for info in infos]


def address_is_public(text: str) -> bool:
    """Whether an address is on the public internet. An IPv6 address that carries an IPv4
    one (IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo) is judged by that IPv4 address:
    ``64:ff9b::a9fe:a9fe`` is 169.254.169.254, the cloud's metadata service."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if carried is None and address.teredo is not None:
            carried = address.teredo[1]
        if carried is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            return carried.is_global
    return address.is_global


def is_public_host(host: str, resolver: Resolver = resolve) -> bool:
    """Whether every address ``host`` resolves to is on the public internet; a host that
    does not resolve is not (it cannot be shown to be).

    Links inside feeds are written by strangers; following one must not reach
    this machine, the local network or a cloud metadata endpoint.
    """
    try:
        addresses = resolver(host)
    except (OSError, UnicodeError, ValueError):
        return False
    return bool(addresses) and all(_public_text(a) for a in addresses)


def _judged(request: httpx.Request, resolver: Resolver) -> tuple[str | None, str | None]:
    """Whether a request (or a redirect hop) may go where it goes: (why not, None), or
    (None, the address to connect to: the one that was checked), or (None, None) when it
    is not to be judged (a request of the operator's own, not public-only)."""
    first = str(request.extensions.get(FIRST_URL) or request.url)
    redirected = str(request.url) != first
    if not request.extensions.get(PUBLIC_ONLY):
        if not redirected:
            return None, None
        origin = urlsplit(first).hostname or ""
        if not is_public_host(origin, resolver):
            return None, None  # a private feed may redirect inside its own network
    host = request.url.host
    try:
        addresses = resolver(host)
    except (OSError, UnicodeError, ValueError):
        return f"could not look up {host}, so it cannot be shown to be a public address", None
    if addresses and all(_public_text(a) for a in addresses):
        return None, addresses[0]
    if redirected:
        why = f"{first} redirects to {request.url}, a private or local address; not following it"
    else:
        why = f"{request.url} points to a private or local address; not following it"
    return why, None


class _Pinned(httpx.BaseTransport):
    """Connects a judged request to the very address that was judged public: resolving the
    name again to connect would let a host answer a public address to the check and a
    private one to the connection (DNS rebinding). The Host header and TLS's server name
    stay the name asked for, so virtual hosts and certificates work as before."""

    def __init__(self, inner: httpx.BaseTransport, resolver: Resolver):
        self.inner, self.resolver = inner, resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        why, address = _judged(request, self.resolver)
        if why is not None:
            raise FetchError(why, transient=False)
        if address is None or address == request.url.host:
            return self.inner.handle_request(request)
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = request.url.host
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,  # Host: the name, as built from the URL asked for
            stream=request.stream,
            extensions=extensions,
        )
        return self.inner.handle_request(pinned)

    def close(self) -> None:
        self.inner.close()


def _public_text(address: str) -> bool:
    try:
        return address_is_public(address)
    except ValueError:
        return False


@dataclass(frozen=True)
class Response:
    """A fully read response (or a 304) with the validators to send next time."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes
    validators: Validators = field(default_factory=Validators)
    #: Where the URL asked for has moved for good (every redirect up to there was a 301
    #: or 308): the address to write in sources.yaml instead.
    moved_to: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class HttpClient:
    """A shared, thread-safe client; one per collection run."""

    def __init__(
        self,
        settings: Settings,
        limiter: HostLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver | None = None,
    ):
        self.settings = settings
        self.limiter = limiter or HostLimiter(settings.per_host)
        #: How hosts are resolved to be judged (tests inject one; looked up at each call).
        self.resolver: Resolver = resolver or (lambda host: resolve(host))
        self._client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=True,
            max_redirects=5,
            transport=_Pinned(transport or httpx.HTTPTransport(), self.resolver),
        )
        self._count_lock = threading.Lock()
        self.requests = 0
        self.bytes = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        validators: Validators | None = None,
        accept: str = "*/*",
        headers: Mapping[str, str] | None = None,
        error_body: bool = False,
        public_only: bool = False,
        content_types: tuple[str, ...] = (),
    ) -> Response:
        """GET ``url``; raise a SourceError for anything but a usable 2xx or a 304.

        With ``error_body``, a 4xx response is returned with its body instead,
        for APIs (arXiv) that explain the error in it. With ``public_only``, no
        hop of the request may go to a private, loopback or link-local address.
        With ``content_types``, a response declaring another type is refused
        before its body is read.
        """
        request_headers = {"Accept": accept, **(headers or {})}
        if validators and validators.etag:
            request_headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            request_headers["If-Modified-Since"] = validators.last_modified
        try:
            host = urlsplit(url).hostname or url
        except ValueError:
            host = url
        with self.limiter.slot(host):
            try:
                return self._get(url, request_headers, error_body, public_only, content_types)
            except httpx.TimeoutException:
                raise FetchError(
                    f"timed out after {self.settings.timeout:g}s waiting for {host}"
                ) from None
            except httpx.TooManyRedirects:
                raise FetchError(f"{url} redirects too many times (more than 5)") from None
            except httpx.ConnectError as exc:
                raise FetchError(_connect_message(host, exc)) from None
            except httpx.HTTPError as exc:
                raise FetchError(f"request to {host} failed: {exc or type(exc).__name__}") from None
            except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
                # A malformed link in a feed (bad port, undecodable host name).
                raise FetchError(
                    f"{url!r} is not a usable address ({exc})", transient=False
                ) from None

    def _get(
        self,
        url: str,
        headers: dict[str, str],
        error_body: bool,
        public_only: bool,
        content_types: tuple[str, ...],
    ) -> Response:
        cap = self.settings.max_bytes
        deadline = time.monotonic() + 3 * self.settings.timeout
        extensions = {PUBLIC_ONLY: public_only, FIRST_URL: str(httpx.URL(url))}
        with self._client.stream("GET", url, headers=headers, extensions=extensions) as response:
            self._count(1, 0)
            if response.status_code == 304:
                return Response(
                    str(response.url),
                    304,
                    response.headers,
                    b"",
                    _validators(response),
                    moved_to(response),
                )
            if response.status_code >= 500 or (response.status_code >= 400 and not error_body):
                wait = retry_after(response.headers) if response.status_code in (429, 503) else None
                raise HTTPStatusError(
                    _status_message(str(response.url), response.status_code, wait),
                    response.status_code,
                    wait,
                )
            declared_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_types and declared_type and declared_type not in content_types:
                raise FetchError(
                    f"{response.url} is {declared_type}, not a web page", transient=False
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise TooLargeError(_too_large(url, cap))
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise TooLargeError(_too_large(url, cap))
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("overall deadline exceeded")
                chunks.append(chunk)
            self._count(0, size)
            return Response(
                str(response.url),
                response.status_code,
                response.headers,
                b"".join(chunks),
                _validators(response),
                moved_to(response),
            )

    def _count(self, requests: int, size: int) -> None:
        with self._count_lock:
            self.requests += requests
            self.bytes += size


def moved_to(response: httpx.Response) -> str | None:
    """The last address reached through permanent redirects only (301, 308) from the first.

    A 302 or 307 on the way is a detour the site may change back: the address before it
    is what to keep.
    """
    target = None
    hops = [*response.history, response]
    for hop, following in itertools.pairwise(hops):
        if hop.status_code not in (301, 308):
            break
        target = str(following.url)
    return target


#: A server may ask for a long pause, but a source or page is never put off for longer.
MAX_RETRY_AFTER = timedelta(days=1)


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> timedelta | None:
    """How long a 429 or 503 asks us to wait: Retry-After in seconds or as an HTTP date."""
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    if raw.isdigit():
        wait = timedelta(seconds=int(raw))
    else:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when - (now or datetime.now(UTC))
    return max(timedelta(0), min(wait, MAX_RETRY_AFTER))


def _validators(response: httpx.Response) -> Validators:
    return Validators(
        etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified")
    )


def _too_large(url: str, cap: int) -> str:
    return (
        f"{url} is larger than the {cap / 1_048_576:g} MB cap; "
        "if it really is a feed, raise TRACKER_MAX_BYTES"
    )


def _status_message(url: str, status: int, wait: timedelta | None = None) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "error"
    if wait is not None:
        return f"{url} answered {status} {reason} and asked us to wait {_duration(wait)}"
    hint = {
        401: "the server wants credentials",
        403: "the server refuses access",
        404: "check the url in sources.yaml",
        410: "the feed is gone; remove or replace the source",
        429: "rate limited; will try again later",
    }.get(status, "server error; will try again later" if status >= 500 else "")
    return f"{url} answered {status} {reason}" + (f" ({hint})" if hint else "")


def _duration(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    if seconds < 180:
        return f"{seconds} s"
    if seconds <= 3 * 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _connect_message(host: str, exc: Exception) -> str:
    text = str(exc).lower()
    if any(
        s in text
        for s in (
            "name or service",
            "nodename",
            "temporary failure",
            "name resolution",
            "no address",
            "getaddrinfo",
        )
    ):
        return f"could not look up {host} (no network, or a typo in the address)"
    if "refused" in text:
        return f"{host} refused the connection (is the server up?)"
    if "certificate" in text or "ssl" in text:
        return f"secure connection to {host} failed ({exc})"
    return f"could not connect to {host} ({exc or type(exc).__name__})"
