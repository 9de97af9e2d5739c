"""Blogs, newsletters and news: RSS 0.9x/1.0/2.0, Atom (feedparser) and JSON Feed.

``parse_feed`` is pure (bytes in, entries out); ``FeedCollector`` does the
fetching: conditional GET for the feed, and the linked page when an entry
carries only a teaser.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
import lxml.etree
import lxml.html
from pydantic import Field

from tracker.collect.sources.article_pages import UNTITLED, PageQueue, fetch_pages
from tracker.collect.sources.base import CollectContext, utc_from_struct
from tracker.collect.sources.entries import Entry, ParsedFeed
from tracker.collect.sources.jsonfeed import looks_like_json, parse_json_feed
from tracker.config.kinds import AddressRule, SourceKind, SourceSettings, Wanted
from tracker.config.values import Url
from tracker.errors import ParseError, UserError
from tracker.models import WITH_PAGE, Fetched, Item, ItemKind, Validators, reader_hash
from tracker.text import html_to_text, one_line, outbound_links
from tracker.urls import canonical_url, url_key, url_problem


class FeedSource(SourceSettings):
    """A blog, newsletter or news feed: RSS, Atom or JSON Feed."""

    kind: Literal["feed"]
    url: Url = Field(description="Address of the feed.")
    full_text: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Fetch the linked page for entries that carry only a teaser (auto).",
    )
    public_only: bool = Field(
        default=False,
        description="Never fetch from a private, loopback or link-local address, redirects "
        "included (set on feeds added with /sources add).",
    )


FEED_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
_TEASER_END = re.compile(
    r"(\.\.\.|…|\[…\]|\[\.\.\.\]|read more|continue reading|read the full\b.*|keep reading)\W*$",
    re.IGNORECASE,
)
#: Below this many characters, a summary without full content is taken as a teaser.
TEASER_CHARS = 500
#: Content at least this long is the post itself, whatever its last words.
FULL_POST_CHARS = 2000


def parse_feed(content: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Entries of an RSS, Atom or JSON feed; a ParseError when there is no feed to read.

    A malformed feed whose entries can still be salvaged yields them, with a
    warning, rather than an error: losing a post over a stray ``&`` helps nobody.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if looks_like_json(content, content_type):
        return parse_json_feed(content, url)
    response_headers = {"content-location": url, **headers}
    # Feed HTML only ever becomes plain text here (html_to_text drops scripts), so
    # feedparser's sanitiser and its rewriting of links inside content, most of its
    # parse time, buy nothing. Entry links are still resolved against the feed's URL.
    parsed = feedparser.parse(
        content,
        response_headers=response_headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        if _is_html(content, content_type):
            raise ParseError(_html_message(content, url))
        reason = parsed.get("bozo_exception")
        if not reason or _harmless(reason):
            reason = "no RSS, Atom or JSON Feed found"
        raise ParseError(f"{url} is not a readable feed ({_where(reason)})")
    warnings: tuple[str, ...] = ()
    if parsed.get("bozo") and parsed.entries and not _harmless(parsed.get("bozo_exception")):
        warnings = (
            f"the feed is not well-formed ({_where(parsed.get('bozo_exception'))}); "
            f"kept the {len(parsed.entries)} entries that could be read",
        )
    # An entry without an author is the feed's author's (RFC 4287, 4.2.1): "research!rsc"
    # says nothing of Russ Cox, its feed's <author> does, and readers name him.
    by_feed = _authors(parsed.feed)
    entries = [_entry(raw, by_feed) for raw in parsed.entries]
    return ParsedFeed(
        title=one_line(parsed.feed.get("title", "")),
        entries=entries,
        format=parsed.get("version") or "unknown",
        warnings=warnings,
    )


_PARSER_PLACE = re.compile(r"^<unknown>:(\d+):(\d+): ")


def _where(reason: object) -> str:
    """The XML parser's complaint as a person reads it: "line 4, column 19: not well-formed
    (invalid token)", not "<unknown>:4:19: ..." (the parser was given no file name)."""
    return _PARSER_PLACE.sub(r"line \1, column \2: ", str(reason))


def _harmless(exc: object) -> bool:
    """Bozo reasons about HTTP headers, not the document: a missing or odd Content-Type,
    or a charset that the XML declaration overrides. The feed itself is fine."""
    return isinstance(exc, feedparser.NonXMLContentType | feedparser.CharacterEncodingOverride)


def _markup(value: str, detail: object) -> str:
    """Entry fields are HTML from here on; feedparser tells which ones were plain text.

    A plain-text title such as "Hiding <think> tokens" must survive html_to_text.
    """
    kind = detail.get("type", "") if isinstance(detail, dict) else ""
    return html.escape(value, quote=False) if kind == "text/plain" else value


def _authors(raw: feedparser.FeedParserDict) -> tuple[str, ...]:
    authors = tuple(a["name"] for a in raw.get("authors", []) if a.get("name"))
    if not authors and raw.get("author"):
        authors = (raw["author"],)
    return authors


def _entry(raw: feedparser.FeedParserDict, by_feed: tuple[str, ...] = ()) -> Entry:
    contents = raw.get("content") or []
    content = max((_markup(c.get("value", ""), c) for c in contents), key=len, default="")
    summary = _markup(raw.get("summary", ""), raw.get("summary_detail"))
    authors = _authors(raw) or by_feed
    link = raw.get("link")
    if not link:
        link = next((x.get("href") for x in raw.get("links", []) if x.get("href")), None)
    # dict.get: feedparser's .get maps a missing updated_parsed to published_parsed, and warns.
    updated = utc_from_struct(dict.get(raw, "updated_parsed"))
    return Entry(
        id=raw.get("id") or None,
        link=link or None,
        title=_markup(raw.get("title", ""), raw.get("title_detail")),
        content=content,
        summary=summary if summary != content else "",
        authors=authors,
        published=utc_from_struct(raw.get("published_parsed")) or updated,
        updated=updated,
        tags=tuple(t["term"] for t in raw.get("tags", []) if t.get("term")),
    )


def _is_html(content: bytes, content_type: str) -> bool:
    if content_type in ("text/html", "application/xhtml+xml"):
        return True
    head = content[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head


def discover_feed(content: bytes, url: str) -> str | None:
    """The feed an HTML page advertises with <link rel="alternate">, if any."""
    try:
        root = lxml.html.fromstring(content)
    except (lxml.etree.ParserError, ValueError):
        return None
    for link in root.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower()
        if "alternate" in rel and any(k in kind for k in ("rss", "atom", "feed+json")):
            href = link.get("href")
            if href:
                return urljoin(url, href)
    return None


def _html_message(content: bytes, url: str) -> str:
    found = discover_feed(content, url)
    if found:
        return (
            f"{url} is an HTML page, not a feed; the page links to a feed at {found}: "
            "use that as url:"
        )
    return f"{url} is an HTML page, not a feed; set url: to the site's RSS or Atom address"


def is_teaser(entry: Entry) -> bool:
    """Whether the entry carries only an excerpt of the article it links to."""
    text = html_to_text(entry.content or entry.summary)
    if not text:
        return True
    if entry.content and len(text) >= FULL_POST_CHARS:
        return False  # a long post that happens to end in "..." or "read the full paper"
    if _TEASER_END.search(text[-200:]):  # the tail only: the pattern backtracks on long runs
        return True
    return not entry.content and len(text) < TEASER_CHARS


def entry_key(entry: Entry) -> str:
    """The entry's identity within its feed: guid, else link, else title and date."""
    if entry.id:
        return entry.id.strip()
    if entry.link:
        return canonical_url(entry.link)
    return f"{one_line(entry.title)}|{entry.published.isoformat() if entry.published else ''}"


def item_id(entry: Entry) -> str:
    """The entry's id when its key is its own (the usual case)."""
    return _hashed(entry_key(entry))


def _disambiguated_id(entry: Entry) -> str:
    return _hashed(f"{entry_key(entry)}|{entry.link}|{entry.title}|{entry.content}|{entry.summary}")


def _hashed(key: str) -> str:
    return "post:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


def assign_ids(entries: list[Entry], known: Mapping[str, str]) -> list[tuple[str, Entry]]:
    """Stable ids for a feed's entries, each distinct entry kept once.

    Some publishers reuse one guid (and link) for different posts. Among
    entries that share a key, the one already stored under the plain id (same
    fingerprint) keeps it, whatever the order this time; failing that, the
    first does. The others get an id made of key, title and text, so every
    post is kept and a post listed twice is still one item.
    """
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        group = groups.setdefault(item_id(entry), [])
        if all(e.fingerprint != entry.fingerprint for e in group):
            group.append(entry)
    owners: dict[str, str] = {}
    for ident, group in groups.items():
        stored = known.get(ident)
        owner = next((e for e in group if _stored_as(stored, e)), group[0])
        owners[ident] = owner.fingerprint
    assigned = []
    for ident, group in groups.items():
        for entry in group:
            mine = entry.fingerprint == owners[ident]
            assigned.append((ident if mine else _disambiguated_id(entry), entry))
    return assigned


def _stored_as(stored: str | None, entry: Entry) -> bool:
    return stored in (entry.fingerprint, entry.fingerprint + WITH_PAGE)


class FeedCollector:
    """Collects one RSS, Atom or JSON feed, then the article pages its teasers want.

    The feed and its pages are separate work: the feed is fetched with conditional GET
    whatever the pages' state, and pages come from the source's queue (``tracker.collect.pages``)
    when they are due, whether the feed changed or answered 304.
    """

    def collect(self, source: FeedSource, ctx: CollectContext) -> Fetched:
        response = ctx.get(
            source.url, ctx.validators, accept=FEED_ACCEPT, public_only=source.public_only
        )
        queue = PageQueue(ctx.pages)
        items: dict[str, Item] = {}
        warnings: list[str] = []
        if response.not_modified:
            validators = refreshed(ctx.validators, response.validators)
        else:
            validators = response.validators
            parsed = parse_feed(response.content, response.url, response.headers)
            warnings.extend(parsed.warnings)
            for ident, entry in assign_ids(parsed.entries, ctx.known):
                stored = ctx.known.get(ident)
                if stored == entry.fingerprint + WITH_PAGE:
                    # Unchanged, and its article was fetched before: the store keeps that
                    # text because the fingerprint matches. No page request.
                    items[ident] = _item(source, entry, ident, parsed.title, stored)
                    queue.settle(ident)
                    continue
                item = _item(source, entry, ident, parsed.title, entry.fingerprint)
                wants_page = entry.link is not None and (
                    source.full_text == "always"
                    or (source.full_text == "auto" and is_teaser(entry))
                )
                if not (wants_page and entry.link):
                    items[ident] = item
                    queue.settle(ident)
                    continue
                if (
                    stored is not None
                    and stored.endswith(WITH_PAGE)
                    and ctx.teaser_hashes.get(ident) == reader_hash(item.title, item.text)
                ):
                    # The entry changed after its article was read, but only its timestamps
                    # (feeds bump <updated> for nothing): the article stands, no page asked.
                    queue.settle(ident)
                    continue
                # New, or new words: the teaser now, the article when its page comes.
                items[ident] = item
                queue.want(ident, entry.link)
        if source.full_text == "never":
            queue.settle_all()
        # Pages are judged by the address configured, not where it redirected: a public
        # feed that redirects inside a network must not open it to its links.
        fetched, failed = fetch_pages(
            source.name, source.public_only, ctx, str(source.url), queue, items, warnings
        )
        return Fetched(
            items=list(items.values()),
            not_modified=response.not_modified,
            validators=validators,
            warnings=tuple(warnings),
            page_changes=queue.changes(),
            pages_fetched=fetched,
            pages_failed=failed,
            moved_to=response.moved_to,
        )


def refreshed(old: Validators, fresh: Validators) -> Validators:
    """A 304 may carry new validators; keep the old ones where it carries none."""
    return Validators(fresh.etag or old.etag, fresh.last_modified or old.last_modified)


def _item(
    source: FeedSource,
    entry: Entry,
    ident: str,
    feed_title: str,
    fingerprint: str,
) -> Item:
    """The entry as an item, with its teaser (or full post) as text."""
    link = canonical_url(entry.link) if entry.link else source.url
    return Item(
        id=ident,
        source=source.name,
        source_kind=source.kind,
        kind=ItemKind.POST,
        url=link,
        title=one_line(entry.title) or UNTITLED,
        text=html_to_text(entry.content or entry.summary),
        authors=entry.authors,
        published=entry.published,
        updated=entry.updated,
        extra={
            "feed_title": feed_title,
            "tags": list(entry.tags),
            "full_text": False,
            "teaser": "",
            "links": outbound_links(entry.content or entry.summary, entry.link or source.url),
        },
        fingerprint=fingerprint,
    )


def feed_wanted(url: str, explicit: bool = True) -> Wanted:
    """Any other address is a feed's, or a page that links to one (probed when added)."""
    problem = url_problem(url)
    if problem:
        raise UserError(problem)
    return Wanted("feed", (("url", url),), url)


def _follows_feed(node: Mapping[str, Any], wanted: Wanted) -> bool:
    """An entry of any kind with the same address (in any spelling) follows the feed."""
    url = node.get("url")
    return url is not None and url_key(str(url)) == url_key(wanted.target)


KIND = SourceKind(
    name="feed",
    settings=FeedSource,
    collector=FeedCollector(),
    interval=timedelta(hours=1),
    address=AddressRule(
        feed_wanted,
        "the address of a feed or of a page that links one",
        _follows_feed,
        last=True,
        probe=True,
    ),
    example="url: https://example.com/feed.xml",
)
