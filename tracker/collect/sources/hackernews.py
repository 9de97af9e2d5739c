"""Hacker News: the stories that match a query and/or reach a number of points.

Algolia's public HN search API (``https://hn.algolia.com/api/v1/search_by_date``,
no key) answers with ``hits``: a story's id, title, linked URL, points, comment
count and time. The item is the linked article under its canonical URL, so it
joins the story of the blog post or paper it links to; the discussion is one
more link, and the points and comments are its engagement. An Ask HN (no link)
is its discussion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from tracker.collect.sources.base import (
    CollectContext,
    count,
    implausible,
    implausible_note,
    parse_iso,
    parse_json,
    utc_from_epoch,
)
from tracker.collect.sources.shared_links import SharedLink, shared_item
from tracker.config.kinds import AddressRule, SourceKind, SourceSettings, VoteScale, Wanted
from tracker.errors import ParseError
from tracker.models import Fetched, Item
from tracker.text import html_to_text, one_line


class HackerNewsSource(SourceSettings):
    """Hacker News stories (Algolia's public search API) matching a query and/or with at
    least ``min_points``."""

    kind: Literal["hackernews"]
    query: str = Field(default="", description="Words to search for, e.g. LLM")
    min_points: int = Field(default=0, ge=0, description="Only stories with this many points.")
    max_results: int = Field(default=50, ge=1, le=1000, description="Stories per run.")

    @model_validator(mode="after")
    def _needs_query_or_points(self) -> HackerNewsSource:
        if not self.query.strip() and not self.min_points:
            raise PydanticCustomError(
                "hackernews_query",
                "a hackernews source needs a query or min_points",
                {"fix": "add for example  query: LLM  or  min_points: 200"},
            )
        return self


SEARCH = "https://hn.algolia.com/api/v1/search_by_date"
DISCUSSION = "https://news.ycombinator.com/item?id={id}"


def search_url(source: HackerNewsSource) -> str:
    """The search for ``source``: its stories, newest first, above its points."""
    params = {"tags": "story", "hitsPerPage": str(source.max_results)}
    if source.query.strip():
        params["query"] = source.query.strip()
    if source.min_points:
        params["numericFilters"] = f"points>={source.min_points}"
    base = source.url or SEARCH
    return f"{base}{'&' if urlsplit(base).query else '?'}{urlencode(params)}"


def parse_hits(content: bytes, url: str) -> tuple[list[SharedLink], list[str]]:
    """The stories of an Algolia answer, and what was skipped, in words."""
    data = parse_json(content, url, "Hacker News search JSON")
    hits = data.get("hits") if isinstance(data, dict) else None
    if not isinstance(hits, list):
        said = data.get("message") if isinstance(data, dict) else None
        raise ParseError(f"{url} did not answer with search hits ({said or 'unexpected JSON'})")
    stories: list[SharedLink] = []
    gone = absurd = 0
    for hit in hits:
        if not isinstance(hit, dict) or not hit.get("objectID"):
            gone += 1
            continue
        title = one_line(str(hit.get("title") or hit.get("story_title") or ""))
        if not title or hit.get("dead") or hit.get("deleted"):
            gone += 1  # a deleted or flagged story keeps its id and loses its title
            continue
        link = str(hit.get("url") or "").strip() or None
        if link is not None and urlsplit(link).scheme not in ("http", "https"):
            link = None
        absurd += implausible(hit.get("points"), hit.get("num_comments"))
        stories.append(
            SharedLink(
                id=str(hit["objectID"]),
                title=title,
                url=link,
                discussion=DISCUSSION.format(id=hit["objectID"]),
                text=html_to_text(str(hit.get("story_text") or "")),
                author=str(hit["author"]) if hit.get("author") else None,
                created=parse_iso(hit.get("created_at")) or utc_from_epoch(hit.get("created_at_i")),
                votes=count(hit.get("points")),
                comments=count(hit.get("num_comments")),
            )
        )
    warnings = [f"{gone} deleted or unreadable stories skipped"] if gone else []
    return stories, warnings + implausible_note(absurd, "story")


class HackerNewsCollector:
    def collect(self, source: HackerNewsSource, ctx: CollectContext) -> Fetched:
        response = ctx.get(search_url(source), ctx.validators, accept="application/json")
        if response.not_modified:
            return Fetched(items=[], not_modified=True, validators=ctx.validators)
        stories, warnings = parse_hits(response.content, response.url)
        items: dict[str, Item] = {}
        for story in stories:
            items.setdefault(f"hn:{story.id}", story_item(source, story))
        return Fetched(
            items=list(items.values()), validators=response.validators, warnings=tuple(warnings)
        )


def story_item(source: HackerNewsSource, story: SharedLink) -> Item:
    """The article a story links to (a paper when it is an arXiv link), discussed on HN."""
    return shared_item(source, "hn", story, {"hn_id": story.id})


#: Points a Hacker News story needs before a source added by its address takes it.
MIN_POINTS_ADDED = 100

_HACKERNEWS = re.compile(r"^(?:https?://)?news\.ycombinator\.com(?:[/?#].*)?$", re.IGNORECASE)


def front_page_wanted(text: str, explicit: bool) -> Wanted | None:
    if not _HACKERNEWS.match(text):
        return None
    return Wanted(
        "hackernews",
        (("min_points", MIN_POINTS_ADDED),),
        "https://news.ycombinator.com",
        "hacker-news",
    )


def _follows_front_page(node: Mapping[str, Any], wanted: Wanted) -> bool:
    # Another query of Hacker News is another source.
    return node.get("kind") == "hackernews" and not str(node.get("query", "") or "").strip()


KIND = SourceKind(
    name="hackernews",
    settings=HackerNewsSource,
    collector=HackerNewsCollector(),
    endpoint=("query",),
    interval=timedelta(hours=1),
    # A front-page story has 100-500 points.
    votes=VoteScale("Hacker News", "points", hit=300),
    shares_links=True,
    address=AddressRule(
        front_page_wanted,
        "https://news.ycombinator.com",
        _follows_front_page,
        note=f"stories with {MIN_POINTS_ADDED}+ points",
    ),
)
