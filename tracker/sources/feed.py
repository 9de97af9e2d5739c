"""Blogs, newsletters and news: RSS 0.9x/1.0/2.0, Atom (feedparser) and JSON Feed.

``parse_feed`` is pure (bytes in, entries out); ``FeedCollector`` does the
fetching: conditional GET for the feed, and the linked page when an entry
carries only a teaser.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import urljoin

import feedparser
import lxml.etree
import lxml.html

from tracker.config import FeedSource
from tracker.errors import ParseError, SourceError
from tracker.models import Fetched, Item, ItemKind, Validators
from tracker.sources.base import CollectContext, utc_from_struct
from tracker.sources.entries import Entry, ParsedFeed
from tracker.sources.extract import Article, extract_article
from tracker.sources.jsonfeed import looks_like_json, parse_json_feed
from tracker.text import html_to_text, one_line
from tracker.urls import canonical_url

FEED_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"

_TEASER_END = re.compile(
    r"(\.\.\.|…|\[…\]|\[\.\.\.\]|read more|continue reading|read the full\b.*|keep reading)\W*$",
    re.IGNORECASE,
)
#: Below this many characters, a summary without full content is taken as a teaser.
TEASER_CHARS = 500


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
        raise ParseError(f"{url} is not a readable feed ({reason})")
    warnings: tuple[str, ...] = ()
    if parsed.get("bozo") and parsed.entries and not _harmless(parsed.get("bozo_exception")):
        warnings = (
            f"the feed is not well-formed ({parsed.get('bozo_exception')}); "
            f"kept the {len(parsed.entries)} entries that could be read",
        )
    entries = [_entry(raw) for raw in parsed.entries]
    return ParsedFeed(
        title=one_line(parsed.feed.get("title", "")),
        entries=entries,
        format=parsed.get("version") or "unknown",
        warnings=warnings,
    )


def _harmless(exc: object) -> bool:
    """Bozo reasons about HTTP headers, not the document: a missing or odd Content-Type,
    or a charset that the XML declaration overrides. The feed itself is fine."""
    return isinstance(exc, feedparser.NonXMLContentType | feedparser.CharacterEncodingOverride)


def _entry(raw: feedparser.FeedParserDict) -> Entry:
    contents = raw.get("content") or []
    content = max((c.get("value", "") for c in contents), key=len, default="")
    authors = tuple(a["name"] for a in raw.get("authors", []) if a.get("name"))
    if not authors and raw.get("author"):
        authors = (raw["author"],)
    link = raw.get("link")
    if not link:
        link = next((x.get("href") for x in raw.get("links", []) if x.get("href")), None)
    # dict.get: feedparser's .get maps a missing updated_parsed to published_parsed, and warns.
    updated = utc_from_struct(dict.get(raw, "updated_parsed"))
    return Entry(
        id=raw.get("id") or None,
        link=link or None,
        title=raw.get("title", ""),
        content=content,
        summary=raw.get("summary", "") if raw.get("summary", "") != content else "",
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
    if _TEASER_END.search(text):
        return True
    return not entry.content and len(text) < TEASER_CHARS


def entry_key(entry: Entry) -> str:
    """The entry's identity within its feed: guid, else link, else title and date."""
    if entry.id:
        return entry.id.strip()
    if entry.link:
        return canonical_url(entry.link)
    return f"{one_line(entry.title)}|{entry.published.isoformat() if entry.published else ''}"


def item_id(entry: Entry, taken: Mapping[str, str] | None = None) -> str:
    """A stable id for the entry; ``taken`` maps ids already used in this feed to fingerprints.

    Some publishers reuse one guid (and link) for different posts. A later entry
    whose id is taken by a different post gets an id made of its key and its
    title and text, so both posts are kept; the same entry listed twice still
    maps to one id.
    """
    key = entry_key(entry)
    ident = _hashed(key)
    if taken is not None and ident in taken and taken[ident] != entry.fingerprint:
        ident = _hashed(f"{key}|{entry.link}|{entry.title}|{entry.content}|{entry.summary}")
    return ident


def _hashed(key: str) -> str:
    return "post:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


class FeedCollector:
    """Collects one RSS, Atom or JSON feed."""

    def collect(self, source: FeedSource, ctx: CollectContext) -> Fetched:
        response = ctx.http.get(source.url, ctx.validators, accept=FEED_ACCEPT)
        if response.not_modified:
            return Fetched(
                items=[],
                not_modified=True,
                validators=refreshed(ctx.validators, response.validators),
            )
        parsed = parse_feed(response.content, response.url, response.headers)
        warnings = list(parsed.warnings)
        items: list[Item] = []
        seen: dict[str, str] = {}
        pages = 0
        skipped_pages = 0
        for entry in parsed.entries:
            ident = item_id(entry, seen)
            if ident in seen:
                continue
            seen[ident] = entry.fingerprint
            article = None
            changed = ctx.known.get(ident) != entry.fingerprint
            wants_page = source.full_text == "always" or (
                source.full_text == "auto" and is_teaser(entry)
            )
            if changed and wants_page and entry.link:
                if pages < ctx.max_pages:
                    pages += 1
                    article, problem = _fetch_article(ctx, entry.link)
                    if problem:
                        warnings.append(problem)
                else:
                    skipped_pages += 1
            items.append(_item(source, entry, ident, article, parsed.title))
        if skipped_pages:
            warnings.append(
                f"{skipped_pages} teaser entries kept without full text this run "
                f"(at most {ctx.max_pages} pages per run; the rest come next run)"
            )
        return Fetched(
            items=items,
            validators=response.validators,
            warnings=tuple(warnings),
        )


def refreshed(old: Validators, fresh: Validators) -> Validators:
    """A 304 may carry new validators; keep the old ones where it carries none."""
    return Validators(fresh.etag or old.etag, fresh.last_modified or old.last_modified)


def _fetch_article(ctx: CollectContext, link: str) -> tuple[Article | None, str | None]:
    try:
        page = ctx.http.get(link, accept=PAGE_ACCEPT)
    except SourceError as exc:
        return None, f"full text of {link} not fetched: {exc}"
    if page.content_type and "html" not in page.content_type:
        return None, None
    try:
        return extract_article(page.content, page.url), None
    except Exception as exc:  # trafilatura on hostile HTML: keep the teaser, never fail the source
        return None, f"full text of {link} could not be extracted ({type(exc).__name__})"


def _item(
    source: FeedSource, entry: Entry, ident: str, article: Article | None, feed_title: str
) -> Item:
    teaser = html_to_text(entry.content or entry.summary)
    text = article.text if article else teaser
    authors = entry.authors
    if not authors and article and article.author:
        authors = (article.author,)
    published = entry.published or (article.published if article else None)
    title = one_line(entry.title) or (article.title if article and article.title else "")
    link = canonical_url(entry.link) if entry.link else source.url
    return Item(
        id=ident,
        source=source.name,
        source_kind=source.kind,
        kind=ItemKind.POST,
        url=link,
        title=title or "(untitled)",
        text=text,
        authors=authors,
        published=published,
        updated=entry.updated,
        extra={
            "feed_title": feed_title,
            "tags": list(entry.tags),
            "full_text": article is not None,
            "teaser": teaser[:1000] if article else "",
        },
        fingerprint=entry.fingerprint,
    )
