"""Is this address a feed we can follow? Checked before anything is added to sources.yaml.

Only http(s) addresses (public ones, for feeds added from Discord), fetched
through ``HttpClient`` (timeouts, size cap) and read by the feed collector's own
parser, so what is added is known to work. Given a web page instead of a feed
(a blog's home page), the probe follows the feed the page advertises in its
``<link rel="alternate">`` tags.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import httpx
import lxml.etree
import lxml.html

from tracker.collect.http import HttpClient, Response, is_public_host
from tracker.collect.sources.feed import FEED_ACCEPT, parse_feed
from tracker.errors import (
    FetchError,
    HTTPStatusError,
    ParseError,
    SourceError,
    UserError,
)
from tracker.settings import Settings
from tracker.text import one_line
from tracker.urls import url_problem


@dataclass(frozen=True)
class FeedProbe:
    """What fetching a feed's address found: it works, and what it is."""

    #: The address the feed was finally served from (after redirects).
    url: str
    title: str
    #: Entries in the feed right now.
    items: int
    #: The address to follow: the one given, or the feed the page given advertises (as the
    #: page wrote it: a redirect after it may be temporary, a CDN or a maintenance page).
    address: str
    kind: str = "feed"
    #: The web page the feed was found on, when a page's address was given.
    page: str | None = None
    #: That page's name for its site (``og:site_name``, else its ``<title>``).
    page_title: str = ""

    @property
    def name_hint(self) -> str:
        """What to name the source after: the page people know, else the feed's title."""
        return self.page_title or self.title


@dataclass(frozen=True)
class WebPage:
    """What an HTML page says about itself: its site's name and the feeds it advertises."""

    title: str
    #: Feed addresses from ``<link rel="alternate">``, absolute, best first.
    feeds: list[str]


#: ``<link rel="alternate" type=...>`` values that announce a feed.
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
#: Announces a JSON Feed on older sites, but also a WordPress REST API page: tried last.
_LOOSE_FEED_TYPES = ("application/json",)
#: Feeds of one page tried, best first, before giving up on it.
_MAX_ADVERTISED = 3
_COMMENTS_PATH = re.compile(r"/comments?(?:/|\.|$)")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def check_feed_url(url: str, *, is_public: Callable[[str], bool] = is_public_host) -> str:
    """The URL, stripped, if tracker may follow it; a UserError saying why not otherwise.

    Only http(s), no credentials, and a host on the public internet: a feed
    added from a chat must not make this machine fetch from itself, its local
    network or a cloud metadata endpoint. ``is_public`` resolves the host (tests
    that serve on 127.0.0.1 pass one that allows it).
    """
    url = url.strip()
    problem = url_problem(url)
    if problem:
        raise UserError(problem)
    host = urlsplit(url).hostname or ""
    if not is_public(host):
        raise UserError(
            f"{host} is a loopback, private or link-local address; tracker only follows "
            "feeds on the public internet. Give the feed's public address."
        )
    return url


def probe_feed(
    url: str,
    settings: Settings,
    http: HttpClient | None = None,
    *,
    is_public: Callable[[str], bool] = is_public_host,
) -> FeedProbe:
    """Fetch ``url`` and read it as the feed collector would; UserError if it is no feed.

    A web page (a blog's home page) is not refused: the feed it advertises with
    ``<link rel="alternate">`` is probed instead, under the same rules.

    Without ``http``, a client of its own checks every hop, redirects included,
    with ``is_public``; a client passed in is asked for public addresses only
    (checked by ``tracker.collect.http`` at every hop).
    """
    url = check_feed_url(url, is_public=is_public)
    own = http is None
    client = http or HttpClient(settings, transport=_PublicOnlyTransport(is_public))
    try:
        response = _fetch(client, url, public_only=not own)
        try:
            parsed = parse_feed(response.content, response.url, response.headers)
        except ParseError as exc:
            content_type = response.headers.get("content-type", "")
            page = read_page(response.content, response.url, content_type)
            if page is None:
                raise UserError(str(exc)) from None
            return _probe_advertised(client, url, page, public_only=not own, is_public=is_public)
        return FeedProbe(
            url=response.url, title=parsed.title, items=len(parsed.entries), address=url
        )
    finally:
        if own:
            client.close()


def _fetch(client: HttpClient, url: str, public_only: bool) -> Response:
    try:
        return client.get(url, accept=FEED_ACCEPT, public_only=public_only)
    except HTTPStatusError as exc:
        raise UserError(_status_message(url, exc.status)) from None
    except SourceError as exc:  # timeouts, refused, too large, a private redirect
        raise UserError(f"could not fetch {url}: {exc}") from None


def _probe_advertised(
    client: HttpClient,
    page_url: str,
    page: WebPage,
    public_only: bool,
    is_public: Callable[[str], bool],
) -> FeedProbe:
    """The first feed ``page`` advertises that works; a UserError naming the page if none."""
    if not page.feeds:
        raise UserError(
            f"{page_url} is a web page that advertises no feed (its <head> has no "
            '<link rel="alternate"> to an RSS, Atom or JSON feed). Find the site\'s feed '
            "address (often /feed, /rss.xml or /atom.xml, or an RSS link on the page) and "
            "add that instead."
        )
    problems: list[str] = []
    for candidate in page.feeds[:_MAX_ADVERTISED]:
        try:
            check_feed_url(candidate, is_public=is_public)
            response = _fetch(client, candidate, public_only)
            parsed = parse_feed(response.content, response.url, response.headers)
        except (UserError, ParseError) as exc:
            problems.append(str(exc))
            continue
        return FeedProbe(
            url=response.url,
            title=parsed.title,
            items=len(parsed.entries),
            address=candidate,
            page=page_url,
            page_title=page.title,
        )
    raise UserError(
        f"{page_url} is a web page, not a feed, and the feed it advertises at "
        f"{page.feeds[0]} cannot be followed: {problems[0]}"
    )


def read_page(content: bytes, url: str, content_type: str = "") -> WebPage | None:
    """The site name and advertised feeds of an HTML page; None if ``content`` is no page.

    Feeds come in the page's order (the first is the site's main feed by
    convention), relative addresses resolved against the page (or its
    ``<base href>``); comment feeds are dropped when the page has another, and a
    plain ``application/json`` link is tried after the real feed types.
    ``content_type`` is the response's header, charset and all.
    """
    mime = content_type.split(";")[0].strip().lower()
    head = content[:4096].lower()
    if mime not in ("text/html", "application/xhtml+xml") and not (
        b"<html" in head or b"<!doctype html" in head
    ):
        return None
    parser = lxml.html.HTMLParser(encoding=_page_encoding(content, content_type))
    try:
        root = lxml.html.fromstring(content, parser=parser)
    except (lxml.etree.ParserError, ValueError, LookupError):
        return None
    base = next((b.get("href") for b in root.iter("base") if b.get("href")), None)
    base_url = urljoin(url, base.strip()) if base else url
    found: list[tuple[bool, bool, str]] = []  # (loose type, comments, address)
    for link in root.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" not in rel or not href or kind not in _FEED_TYPES + _LOOSE_FEED_TYPES:
            continue
        address = urljoin(base_url, href)
        title = (link.get("title") or "").lower()
        comments = "comment" in title or bool(_COMMENTS_PATH.search(urlsplit(address).path.lower()))
        if all(address != f[2] for f in found):
            found.append((kind in _LOOSE_FEED_TYPES, comments, address))
    if any(not comments for _, comments, _ in found):
        found = [f for f in found if not f[1]]
    found.sort(key=lambda f: f[0])  # stable: page order within each group
    return WebPage(title=_site_name(root), feeds=[f[2] for f in found])


def _page_encoding(content: bytes, content_type: str) -> str:
    """The header's charset, else the page's own ``<meta charset>``, else UTF-8 if the bytes
    are UTF-8 (most pages without a declaration are), else Windows-1252."""
    declared = _CHARSET.search(content_type) or _CHARSET.search(
        content[:4096].decode("ascii", "replace")
    )
    if declared:
        try:
            return codecs.lookup(declared.group(1)).name
        except LookupError:
            pass
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _site_name(root: lxml.html.HtmlElement) -> str:
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").lower()
        if key == "og:site_name" and (meta.get("content") or "").strip():
            return one_line(meta.get("content") or "")
    title = next(root.iter("title"), None)
    return one_line(title.text_content()) if title is not None else ""


class _PublicOnlyTransport(httpx.BaseTransport):
    """Refuses any hop, redirects included, to a host ``is_public`` does not allow."""

    def __init__(self, is_public: Callable[[str], bool]):
        self._is_public = is_public
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self._is_public(request.url.host):
            raise FetchError(
                f"it leads to {request.url}, a loopback, private or link-local address; "
                "tracker only follows feeds on the public internet"
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _status_message(url: str, status: int) -> str:
    try:
        reason = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        reason = str(status)
    if status in (401, 403):
        hint = "the feed needs a login or refuses tracker; only public feeds can be followed"
    elif status in (404, 410):
        hint = "there is no feed at that address; check it (the site's pages usually link it)"
    elif status == 429 or status >= 500:
        hint = "the site is having trouble or limiting requests; try again later"
    else:
        hint = "check the address"
    return f"{url} answered {reason}: {hint}"
