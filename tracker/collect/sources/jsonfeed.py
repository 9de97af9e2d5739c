"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org), which feedparser 6 does not read.

A pure parse step producing the same ``Entry`` shape as the XML feeds.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import urljoin

from tracker.collect.sources.base import parse_iso
from tracker.collect.sources.entries import Entry, ParsedFeed
from tracker.errors import ParseError


def looks_like_json(content: bytes, content_type: str) -> bool:
    if "json" in content_type:
        return True
    head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{url} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ParseError(f"{url} is JSON but not a JSON Feed (no items list)")
    base = data.get("home_page_url") or url
    entries = []
    for raw in data["items"]:
        if isinstance(raw, dict):
            entries.append(_entry(raw, base))
    return ParsedFeed(title=str(data.get("title") or ""), entries=entries, format="json")


def _entry(raw: dict[str, Any], base: str) -> Entry:
    authors = raw.get("authors") or ([raw["author"]] if isinstance(raw.get("author"), dict) else [])
    names = tuple(str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name"))
    link = raw.get("url") or raw.get("external_url")
    published = parse_iso(raw.get("date_published"))
    updated = parse_iso(raw.get("date_modified")) or published
    tags = raw.get("tags")
    return Entry(
        id=str(raw["id"]) if raw.get("id") is not None else None,
        link=urljoin(base, str(link)) if link else None,
        title=html.escape(str(raw.get("title") or "")),
        # Entry fields are HTML; JSON Feed's text fields are plain text.
        content=str(raw.get("content_html") or html.escape(str(raw.get("content_text") or ""))),
        summary=html.escape(str(raw.get("summary") or "")),
        authors=names,
        published=published or updated,
        updated=updated,
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
    )
