"""Safe edits of the hand-written ``sources.yaml``: ``/sources add`` and ``/sources remove``
in Discord, ``tracker sources add`` and ``tracker sources import`` on the command line.

People edit that file by hand, with comments, section banners and their own
quoting, so an edit must not reformat it. ruamel.yaml (round-trip) reads the
file to find where each entry of ``sources:`` starts and how the list is
indented; the change is then spliced into the text, and every other byte stays
as it was (add, then remove, gives back the same file). Only layouts a splice
cannot handle (a flow-style ``sources: [...]``, removing the last source) are
written back by ruamel as a whole, which keeps comments but may move a few.

Every edit is checked with the parser the tracker itself uses before the file
is replaced, atomically, so a mistake can never leave an unreadable file; a
file changed by someone else during the edit is left alone.

Adding starts with ``wanted_from``: a GitHub repository, a subreddit, Hugging
Face's papers or Hacker News become sources of their own kind; any other address
is a feed, checked with ``check_feed_url`` and ``probe_feed``: only http(s)
addresses (public ones, for feeds added from Discord), fetched through
``HttpClient`` (timeouts, size cap) and read by the feed collector's own parser,
so what is added is known to work. Given a web page instead of a feed, the probe
follows the feed the page advertises. ``follow`` does all of it for the bot's
``/sources add`` and ``tracker sources add`` alike; ``import_feeds`` adds the
feeds of an OPML file in one edit.
"""

from __future__ import annotations

import codecs
import difflib
import io
import os
import re
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import lxml.etree
import lxml.html
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from tracker.config import parse_config
from tracker.errors import (
    ConfigError,
    FetchError,
    HTTPStatusError,
    ParseError,
    SourceError,
    UserError,
)
from tracker.http import HttpClient, Response, is_public_host
from tracker.opml import Subscription, tags_of
from tracker.settings import Settings
from tracker.sources.feed import FEED_ACCEPT, parse_feed
from tracker.text import one_line
from tracker.urls import canonical_url

T = TypeVar("T")

#: One edit of sources.yaml at a time in this process (the bot runs edits in threads).
_EDIT_LOCK = threading.Lock()

#: Titles too generic to name a source by; the host says more.
_GENERIC_TITLES = frozenset({"blog", "feed", "rss", "atom", "news", "home", "posts", "index"})

#: A comment line that draws a rule ("# --- Papers ----"): it heads a section of the list.
_BANNER = re.compile(r"[-=#*~_]{3,}")


# --- checking and probing a feed ------------------------------------------------------


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
    problem = _url_problem(url)
    if problem:
        raise UserError(problem)
    host = urlsplit(url).hostname or ""
    if not is_public(host):
        raise UserError(
            f"{host} is a loopback, private or link-local address; tracker only follows "
            "feeds on the public internet. Give the feed's public address."
        )
    return url


def _url_problem(url: str) -> str | None:
    """What is wrong with ``url`` without looking its host up, if anything."""
    example = "such as https://example.com/feed.xml"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"{url!r} is not a usable address ({exc}); give a full address {example}"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"{parts.scheme}: addresses" if parts.scheme else "addresses without http(s)://"
        return f"tracker follows http and https feeds only, not {scheme}; give one {example}"
    if not parts.hostname:
        return f"{url!r} has no host name; give a full address {example}"
    if parts.username is not None or parts.password is not None:
        return (
            "the address carries a user name or password; tracker keeps no credentials "
            "in sources.yaml, so give the address of a feed that needs no login"
        )
    if any(c.isspace() or not c.isprintable() for c in url) or len(url) > 2000:
        return f"{url[:200]!r} is not a usable address; give a full address {example}"
    return None


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
    (checked by ``tracker.http`` at every hop).
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


# --- what an address asks to follow -------------------------------------------------------

#: The ``--kind`` of ``tracker sources add``: auto tells from the address.
ADD_KINDS = ("auto", "feed", "github_releases", "reddit", "hf_papers", "hackernews")

#: Points a Hacker News story needs before a source added by its address takes it.
HACKERNEWS_MIN_POINTS = 100

#: github.com/<first>/... that are GitHub's own pages, not a repository's owner.
_GITHUB_PAGES = frozenset(
    {
        *("about", "apps", "collections", "codespaces", "enterprise", "events", "explore"),
        *("features", "issues", "login", "marketplace", "new", "notifications", "orgs"),
        *("pricing", "pulls", "search", "settings", "site", "sponsors", "topics", "trending"),
        "users",
    }
)
_GITHUB = re.compile(
    r"^(?:https?://)?(?:www\.)?github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?"
    r"(?:/releases(?:\.atom)?(?:/[^?#]*)?)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)
_OWNER_REPO = re.compile(r"^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
_REDDIT = re.compile(
    r"^(?:https?://)?(?:(?:www|old|new|np)\.)?reddit\.com/r/([A-Za-z0-9_]+)(?:[/?#].*)?$",
    re.IGNORECASE,
)
_SUBREDDIT = re.compile(r"^(?:/?r/)?([A-Za-z0-9_]{2,21})/?$")
_HF_PAPERS = re.compile(
    r"^(?:https?://)?(?:www\.)?huggingface\.co/papers/?(?:[?#].*)?$", re.IGNORECASE
)
_HACKERNEWS = re.compile(r"^(?:https?://)?news\.ycombinator\.com(?:[/?#].*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Wanted:
    """What an address given to ``sources add`` asks to follow, before anything is fetched."""

    kind: str
    #: What it follows, as the keys of its entry in sources.yaml (url:, repo:, ...).
    keys: tuple[tuple[str, str | int], ...]
    #: How to show what it follows: the feed's address, owner/repo, r/name, a site.
    target: str
    #: What to name it after when no name is given (a feed: its title, found later).
    name_hint: str = ""


class AlreadyFollowed(UserError):
    """What was asked for is followed already, under ``name``: nothing to do."""

    def __init__(self, what: str, name: str):
        super().__init__(f"{what} is already followed, as the source {name!r}")
        self.name = name


def wanted_from(text: str, kind: str = "auto") -> Wanted:
    """The source ``text`` asks for: a GitHub repository's releases, a subreddit, Hugging
    Face's daily papers, Hacker News' front page, or (anything else) a feed.

    With ``kind`` given, ``text`` must be an address of that kind; a repository
    may also be written owner/repo, and a subreddit r/name.
    """
    text = text.strip()
    if kind == "auto":
        for guess in (_github, _reddit, _hf_papers, _hackernews):
            wanted = guess(text, False)
            if wanted is not None:
                return wanted
        return _feed(text)
    if kind == "feed":
        return _feed(text)
    parsers = {
        "github_releases": (_github, "a repository, such as https://github.com/vllm-project/vllm"),
        "reddit": (_reddit, "a subreddit, such as https://www.reddit.com/r/LocalLLaMA"),
        "hf_papers": (_hf_papers, "https://huggingface.co/papers"),
        "hackernews": (_hackernews, "https://news.ycombinator.com"),
    }
    if kind not in parsers:
        kinds = ", ".join(ADD_KINDS)
        raise UserError(f"{kind!r} is not a kind tracker can add; use one of {kinds}")
    parse, example = parsers[kind]
    wanted = parse(text, True)
    if wanted is None:
        raise UserError(f"{text[:200]!r} is not an address of a {kind} source; give {example}")
    return wanted


def _feed(url: str) -> Wanted:
    problem = _url_problem(url)
    if problem:
        raise UserError(problem)
    return Wanted("feed", (("url", url),), url)


def _github(text: str, explicit: bool) -> Wanted | None:
    match = _GITHUB.match(text) or (_OWNER_REPO.match(text) if explicit else None)
    if match is None or match.group(1).lower() in _GITHUB_PAGES:
        return None
    owner, name = match.group(1), match.group(2).removesuffix(".git")
    return Wanted("github_releases", (("repo", f"{owner}/{name}"),), f"{owner}/{name}", name)


def _reddit(text: str, explicit: bool) -> Wanted | None:
    match = _REDDIT.match(text) or (_SUBREDDIT.match(text) if explicit else None)
    if match is None:
        return None
    name = match.group(1)
    return Wanted("reddit", (("subreddit", name),), f"r/{name}", f"r/{name}")


def _hf_papers(text: str, explicit: bool) -> Wanted | None:
    if not _HF_PAPERS.match(text):
        return None
    return Wanted("hf_papers", (), "https://huggingface.co/papers", "hf-papers")


def _hackernews(text: str, explicit: bool) -> Wanted | None:
    if not _HACKERNEWS.match(text):
        return None
    return Wanted(
        "hackernews",
        (("min_points", HACKERNEWS_MIN_POINTS),),
        "https://news.ycombinator.com",
        "hacker-news",
    )


def _follows(node: object, wanted: Wanted) -> bool:
    """Whether the entry ``node`` of sources.yaml already follows what ``wanted`` asks for."""
    if not isinstance(node, CommentedMap):
        return False
    kind = str(node.get("kind", ""))
    if wanted.kind == "feed":
        url = node.get("url")
        return url is not None and _url_key(url) == _url_key(wanted.target)
    if kind != wanted.kind:
        return False
    if kind == "github_releases":
        return str(node.get("repo", "")).strip().casefold() == wanted.target.casefold()
    if kind == "reddit":
        have = str(node.get("subreddit", "")).strip().rstrip("/").rsplit("/", 1)[-1]
        return f"r/{have}".casefold() == wanted.target.casefold()
    if kind == "hackernews":  # another query of Hacker News is another source
        return not str(node.get("query", "") or "").strip()
    return kind == "hf_papers"


# --- adding and removing ------------------------------------------------------------------


@dataclass(frozen=True)
class Followed:
    """A source just added to sources.yaml, and what checking it found."""

    name: str
    kind: str
    target: str
    #: For a feed: what fetching it found.
    probe: FeedProbe | None = None

    @property
    def note(self) -> str:
        """One line for a person: the feed's title and size, and the page it was found on."""
        probe = self.probe
        if probe is None:
            if self.kind == "hackernews":
                return f"stories with {HACKERNEWS_MIN_POINTS}+ points"
            return ""
        count = f"{probe.items} entries" if probe.items != 1 else "1 entry"
        title = f"“{probe.title}”, " if probe.title else ""
        found = f"; the feed that {probe.page} links to" if probe.page else ""
        return f"{title}{count} now{found}"


def follow(
    path: Path,
    url: str,
    settings: Settings,
    *,
    name: str | None = None,
    kind: str = "auto",
    is_public: Callable[[str], bool] = is_public_host,
    public_only: bool = True,
    http: HttpClient | None = None,
) -> Followed:
    """Add what ``url`` asks for to ``path``: the one way the bot's ``/sources add`` and
    ``tracker sources add`` add a source.

    A feed (or the feed a web page advertises) is fetched first, so only one
    that works is added; other kinds are added as they are (their collectors
    fetch fixed public APIs). Something already followed raises AlreadyFollowed,
    before any fetch when the address itself is followed.
    """
    wanted = wanted_from(url, kind)
    _check_addable(path, wanted, name)
    if wanted.kind != "feed":
        used, _ = add_entry(path, wanted, name)
        return Followed(used, wanted.kind, wanted.target)
    probe = probe_feed(wanted.target, settings, http, is_public=is_public)
    used, _ = add_source(path, probe.address, name, probe.name_hint, public_only=public_only)
    return Followed(used, "feed", probe.address, probe)


def _check_addable(path: Path, wanted: Wanted, name: str | None) -> None:
    """Refuse early, before any fetch: a file with problems, a source followed, a name taken.
    (The edit checks all of it again, under the lock.)"""
    text = _read(Path(os.path.realpath(path)), missing_ok=True)
    if not text.strip():
        return
    _valid(text, str(path), None)
    layout = _Layout.read(text, str(path))
    followed = layout.following(wanted)
    if followed:
        raise AlreadyFollowed(wanted.target, followed)
    if name is not None:
        _new_name(layout.taken(), name, None, wanted.target)


def add_source(
    path: Path,
    url: str,
    name: str | None,
    title: str | None = None,
    *,
    public_only: bool = True,
) -> tuple[str, str]:
    """Append a ``feed`` source to ``sources:``; return the name used and the new text.

    Without ``name``, one is made from ``title`` (the feed's) or the host, unique
    in the file. Refuses an address or a name already followed. ``public_only``
    (the default: feeds added from Discord) marks it never to be fetched from
    inside this machine's network.
    """
    return add_entry(path, _feed(url.strip()), name, title, public_only=public_only)


def add_entry(
    path: Path,
    wanted: Wanted,
    name: str | None,
    title: str | None = None,
    *,
    public_only: bool = False,
) -> tuple[str, str]:
    """Append the source ``wanted`` to ``sources:``; return the name used and the new text."""

    def change(text: str) -> tuple[str, str]:
        layout = _Layout.read(text, str(path))
        followed = layout.following(wanted)
        if followed:
            raise AlreadyFollowed(wanted.target, followed)
        used = _new_name(layout.taken(), name, title or wanted.name_hint, wanted.target)
        entry: dict[str, Any] = {"name": used, "kind": wanted.kind, **dict(wanted.keys)}
        if wanted.kind == "feed" and public_only:
            # Added by someone in Discord, not by whoever runs the machine: it may never be
            # fetched from (or redirected to) an address inside the machine's network.
            entry["public_only"] = True
        return layout.added(entry), used

    text, used = _edit(path, change, missing_ok=True)
    return used, text


@dataclass(frozen=True)
class Imported:
    """What importing a list of feeds did, feed by feed (titles as the list wrote them)."""

    #: Names of the sources added, in the list's order.
    added: list[str]
    #: (title, name of the source that follows it already)
    followed: list[tuple[str, str]]
    #: (title, why it was left out)
    skipped: list[tuple[str, str]]


def import_feeds(
    path: Path,
    feeds: Sequence[Subscription],
    *,
    public_only: bool = False,
    dry_run: bool = False,
) -> Imported:
    """Add every feed of an OPML list not followed yet, in one edit; the rest reported.

    Feeds are not fetched (a reader's list is hundreds of feeds, and a dead one
    shows in ``tracker collect`` like any other); their folders become tags.
    """

    def change(text: str) -> tuple[str, Imported]:
        layout = _Layout.read(text, str(path))
        taken = layout.taken()
        first: dict[str, Subscription] = {}
        entries: list[dict[str, Any]] = []
        done = Imported([], [], [])
        for feed in feeds:
            label = feed.title or feed.url
            problem = _import_problem(feed.url)
            if problem:
                done.skipped.append((label, problem))
                continue
            key = _url_key(feed.url)
            if key in first:
                where = f" (line {first[key].line})" if first[key].line else ""
                done.skipped.append((label, f"listed twice in the file{where}: imported once"))
                continue
            first[key] = feed
            already = layout.following(_feed(feed.url))
            if already:
                done.followed.append((label, already))
                continue
            used = _new_name(taken, None, feed.title, feed.url)
            taken.add(used.casefold())
            entry: dict[str, Any] = {"name": used, "kind": "feed", "url": feed.url}
            tags = tags_of(feed)
            if tags:
                entry["tags"] = _flow(tags)
            if public_only:
                entry["public_only"] = True
            entries.append(entry)
            done.added.append(used)
        return (layout.added_all(entries) if entries else text), done

    _, done = _edit(path, change, missing_ok=True, write=not dry_run)
    return done


def _import_problem(url: str) -> str | None:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        what = f"a {scheme}: address" if scheme else "not a full address"
        return f"{url[:200]} is {what}; tracker follows http(s) feeds only"
    return _url_problem(url)


def _flow(items: list[str]) -> CommentedSeq:
    """A list written on one line, ``tags: [blog, ai]``, as sources.yaml writes them."""
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def remove_source(path: Path, name: str) -> str:
    """Remove the source called ``name``; return a description of what was removed.

    Comment lines right above the entry go with it, unless they are a section
    banner (a rule such as ``# --- Papers ---``), which stays for the section.
    """

    def change(text: str) -> tuple[str, str]:
        layout = _Layout.read(text, str(path))
        index = layout.index_of(name)
        return layout.removed(index), layout.describe(index)

    _, described = _edit(path, change, missing_ok=False)
    return described


def _new_name(taken: set[str], name: str | None, title: str | None, url: str) -> str:
    """``name`` if free; without one, a free name made from ``title`` or ``url``'s host.
    ``taken`` holds the names in use, case-folded."""
    if name is not None and name.strip():
        chosen = name.strip()
        if len(chosen) > 80 or not chosen.isprintable():
            raise UserError("a source name is one line of at most 80 characters")
        if chosen.casefold() in taken:
            other = _unique(_slug(chosen) or "feed", taken)
            raise UserError(
                f"there is already a source named {chosen!r}; choose another name, "
                f"such as {other!r}"
            )
        return chosen
    base = _slug(title or "")
    if not base or base in _GENERIC_TITLES:
        base = _host_slug(url) or base or "feed"
    return _unique(base, taken)


def _slug(text: str) -> str:
    """``Simon Willison’s Weblog`` -> ``simon-willisons-weblog`` (ASCII, at most 40 chars)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.replace("'", "")).strip("-")
    if len(slug) > 40:
        slug = slug[:40].rsplit("-", 1)[0] or slug[:40]
    return slug


def _host_slug(url: str) -> str:
    """``https://www.example.co/feed`` -> ``example``: the host without www. and its TLD."""
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    labels = host.split(".")
    return _slug(".".join(labels[:-1]) if len(labels) > 1 else host)


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _url_key(url: str) -> str:
    """One spelling per feed address: http and https, a trailing slash and case of the host
    do not make another feed."""
    canonical = canonical_url(str(url))
    return re.sub(r"^https?://", "", canonical).rstrip("/")


# --- the file's layout and splicing -------------------------------------------------------


def _rt_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long query or URL onto two lines
    return yaml


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


@dataclass(frozen=True)
class _Entry:
    node: Any
    #: The line of its dash, and the line after its last line (0-based, half-open).
    start: int
    end: int


@dataclass
class _Layout:
    """``sources.yaml`` as text lines and as ruamel's tree, with where each entry lies."""

    text: str
    lines: list[str]
    data: CommentedMap | None
    seq: CommentedSeq | None
    entries: list[_Entry]
    dash_col: int
    key_col: int
    newline: str

    @classmethod
    def read(cls, text: str, file: str) -> _Layout:
        try:
            data = _rt_yaml().load(text)
        except YAMLError:
            _valid(text, file, None)  # raises the tracker's own message, with the line
            raise
        if data is not None and not isinstance(data, CommentedMap):
            _valid(text, file, None)
        lines = text.splitlines(keepends=True)
        newline = "\r\n" if "\r\n" in text else "\n"
        seq = data.get("sources") if data is not None else None
        if not isinstance(seq, CommentedSeq):
            return cls(text, lines, data, None, [], 2, 4, newline)
        starts = [_dash_line(lines, seq.lc.item(i)[0]) for i in range(len(seq))]
        dash_col = _indent(lines[starts[0]]) if starts else 2
        key_col = dash_col + 2
        if starts and starts[0] == seq.lc.item(0)[0]:
            key_col = seq.lc.item(0)[1]
        entries = []
        for i, start in enumerate(starts):
            limit = starts[i + 1] if i + 1 < len(starts) else len(lines)
            entries.append(_Entry(seq[i], start, _entry_end(lines, start, limit, dash_col)))
        return cls(text, lines, data, seq, entries, dash_col, key_col, newline)

    # --- reading ---

    def names(self) -> list[str]:
        return [
            str(e.node["name"]).strip()
            for e in self.entries
            if isinstance(e.node, CommentedMap) and e.node.get("name") is not None
        ]

    def taken(self) -> set[str]:
        """The names in use, case-folded: names are unique regardless of case."""
        return {n.casefold() for n in self.names()}

    def following(self, wanted: Wanted) -> str | None:
        """The name of the source that already follows what ``wanted`` asks for, if any."""
        for e in self.entries:
            if _follows(e.node, wanted):
                return str(e.node.get("name", "(unnamed)"))
        return None

    def index_of(self, name: str) -> int:
        wanted = name.strip()
        named = [
            (i, str(e.node.get("name", "")).strip())
            for i, e in enumerate(self.entries)
            if isinstance(e.node, CommentedMap)
        ]
        for i, have in named:
            if have == wanted:
                return i
        for i, have in named:  # names are unique regardless of case (see tracker.config)
            if have.casefold() == wanted.casefold():
                return i
        close = difflib.get_close_matches(wanted, [n for _, n in named], n=3, cutoff=0.6)
        hint = (
            f"did you mean {' or '.join(repr(c) for c in close)}?"
            if close
            else "the list of sources shows every name"
        )
        raise UserError(f"no source is named {wanted!r}; {hint}")

    def describe(self, index: int) -> str:
        node = self.entries[index].node
        kind = str(node.get("kind", "?"))
        target = node.get("url") or node.get("repo") or node.get("query") or node.get("ids")
        if isinstance(target, list):
            target = ", ".join(str(t) for t in target)
        return (
            f"{node.get('name')} ({kind}: {target})" if target else f"{node.get('name')} ({kind})"
        )

    # --- editing ---

    def added(self, entry: dict[str, Any]) -> str:
        return self.added_all([entry])

    def added_all(self, entries: list[dict[str, Any]]) -> str:
        if self.seq is not None and self.entries and not self.seq.fa.flow_style():
            return self._append_entries(entries)  # the usual case: after the last entry
        if self.data is None or ("sources" not in self.data and not self.data.fa.flow_style()):
            return self._append_sources(entries)  # an empty file, or one without sources:
        if self.seq is None and self._bare_key_line() is not None:
            return self._insert_after_key(entries)  # "sources:" with nothing under it
        return self._rewritten(lambda seq: seq.extend(CommentedMap(e) for e in entries))

    def removed(self, index: int) -> str:
        if self.seq is None or self.seq.fa.flow_style() or len(self.entries) == 1:
            return self._rewritten(lambda seq: seq.pop(index))
        lines = self.lines
        entry = self.entries[index]
        first = _owned_start(lines, entry.start, self.dash_col)
        before = first
        while before > 0 and not lines[before - 1].strip():
            before -= 1
        after = entry.end
        if before == first:  # nothing blank above: take the blank lines below instead
            while after < len(lines) and not lines[after].strip():
                after += 1
        return "".join(lines[:before] + lines[after:])

    def _append_entries(self, entries: list[dict[str, Any]]) -> str:
        lines = list(self.lines)
        last = self.entries[-1]
        blank = len(self.entries) > 1 and any(
            not line.strip() for line in lines[self.entries[-2].end : last.start]
        )
        if not lines[last.end - 1].endswith(("\n", "\r")):
            lines[last.end - 1] += self.newline  # a file without a final newline gets one
        gap = self.newline if blank else ""  # entries apart as the last two are
        block = "".join(gap + self._render(e, self.dash_col, self.key_col) for e in entries)
        return "".join([*lines[: last.end], block, *lines[last.end :]])

    def _append_sources(self, entries: list[dict[str, Any]]) -> str:
        text = self.text
        if text and not text.endswith(("\n", "\r")):
            text += self.newline
        if text.strip() and not text.endswith(self.newline * 2):
            text += self.newline
        return text + "sources:" + self.newline + "".join(self._render(e, 2, 4) for e in entries)

    def _bare_key_line(self) -> int | None:
        """The line of ``sources:`` when nothing but a comment follows it there."""
        assert self.data is not None
        line = self.data.lc.key("sources")[0]
        return line if re.match(r"^sources\s*:\s*(#.*)?$", self.lines[line].strip()) else None

    def _insert_after_key(self, entries: list[dict[str, Any]]) -> str:
        assert self.data is not None
        line = self._bare_key_line()
        assert line is not None
        lines = list(self.lines)
        if not lines[line].endswith(("\n", "\r")):
            lines[line] += self.newline
        dash = self.data.lc.key("sources")[1] + 2
        block = "".join(self._render(e, dash, dash + 2) for e in entries)
        return "".join([*lines[: line + 1], block, *lines[line + 1 :]])

    def _render(self, entry: dict[str, Any], dash_col: int, key_col: int) -> str:
        """The entry as YAML lines at this indentation, in the style of its siblings."""
        node = CommentedMap(entry)
        last = self.entries[-1].node if self.entries else None
        if isinstance(last, CommentedMap) and last.fa.flow_style():
            node.fa.set_flow_style()  # "- {name: ..., kind: feed, url: ...}" like the others
        out = io.StringIO()
        _rt_yaml().dump(node, out)
        body = out.getvalue().splitlines()
        first = " " * dash_col + "-" + " " * max(1, key_col - dash_col - 1) + body[0]
        rest = [" " * key_col + line for line in body[1:]]
        return "".join(line + self.newline for line in [first, *rest])

    def _rewritten(self, change: Callable[[CommentedSeq], object]) -> str:
        """The whole file through ruamel, for layouts a splice cannot handle."""
        _, indent, offset = load_yaml_guess_indent(self.text)
        offset = 2 if offset is None else offset
        yaml = _rt_yaml()
        yaml.indent(mapping=indent or 2, sequence=offset + 2, offset=offset)
        data = yaml.load(self.text)  # again: with quotes preserved
        if data is None:
            data = CommentedMap()
        seq = data.get("sources")
        if not isinstance(seq, CommentedSeq):
            seq = data["sources"] = CommentedSeq()
        change(seq)
        out = io.StringIO()
        yaml.dump(data, out)
        return out.getvalue()


def _dash_line(lines: list[str], line: int) -> int:
    """The line of the ``-`` of the item whose content starts on ``line``."""
    while line > 0 and not lines[line].lstrip().startswith("-"):
        line -= 1
    return line


def _entry_end(lines: list[str], start: int, limit: int, dash_col: int) -> int:
    """The line after an entry's last line: its content is indented past the dash."""
    end = start + 1
    for i in range(start + 1, limit):
        if not lines[i].strip():
            continue
        if _indent(lines[i]) <= dash_col:
            break
        end = i + 1
    return end


def _owned_start(lines: list[str], start: int, dash_col: int) -> int:
    """The first of the comment lines right above an entry that belong to it."""
    first = start
    while (
        first > 0
        and _is_comment(lines[first - 1])
        and _indent(lines[first - 1]) == dash_col
        and not _BANNER.search(lines[first - 1])
    ):
        first -= 1
    return first


# --- validating and writing ---------------------------------------------------------------


def _valid(text: str, file: str, original: str | None) -> None:
    """Raise a UserError unless ``text`` is a sources.yaml the tracker accepts."""
    try:
        parse_config(text, file)
    except ConfigError as exc:
        if original is not None:
            try:
                parse_config(original, file)
            except ConfigError:
                pass
            else:
                raise UserError(
                    f"the change would make {file} invalid, so it was not saved:\n{exc}"
                ) from None
        raise UserError(f"{file} has problems to fix before it can be edited:\n{exc}") from None


def _read(path: Path, missing_ok: bool) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if missing_ok:
            return ""
        raise UserError(f"{path} does not exist, so there is nothing to remove") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; save it as UTF-8 and try again") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None


def _edit(
    path: Path, change: Callable[[str], tuple[str, T]], missing_ok: bool, write: bool = True
) -> tuple[str, T]:
    """Read, change, validate and atomically replace ``path``: one edit at a time.

    An edit that changes nothing writes nothing; without ``write`` (a dry run),
    the change is made and checked but not saved.
    """
    target = Path(os.path.realpath(path))  # a symlinked sources.yaml stays a symlink
    with _EDIT_LOCK:
        original = _read(target, missing_ok)
        text, result = change(original)
        if text == original:
            return text, result
        _valid(text, str(path), original)
        if write:
            _replace(target, text, original)
    return text, result


def _replace(path: Path, text: str, expected: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``: a reader sees the old file or the new one, never half of one."""
    if _read(path, missing_ok=True) != expected:
        raise UserError(
            f"{path.name} was changed by someone else during this edit, so nothing was "
            "saved; try again"
        )
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write beside {path} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException as exc:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {path} ({exc.strerror or exc})") from None
        raise
    with suppress(OSError):  # make the rename itself durable (not possible everywhere)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
