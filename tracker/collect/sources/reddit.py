"""A subreddit's top or hot posts, from Reddit's public JSON listing (no key).

``https://www.reddit.com/r/NAME/top.json?t=day`` answers with a ``Listing`` of
``t3`` posts: title, linked URL (or the post itself, for a text post), self
text, score, comment count, time. A link post's item is the linked article under
its canonical URL, so it joins the story of that post or paper; the thread is
its discussion. NSFW, removed and deleted posts are skipped and said in the
warnings; pinned (stickied) moderator posts are not news and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urljoin, urlsplit

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from tracker.collect.sources.base import (
    CollectContext,
    count,
    implausible,
    implausible_note,
    parse_json,
    utc_from_epoch,
)
from tracker.collect.sources.shared_links import SharedLink, shared_item
from tracker.config.kinds import AddressRule, SourceKind, SourceSettings, VoteScale, Wanted
from tracker.errors import ParseError
from tracker.models import Fetched, Item
from tracker.text import normalise_space, one_line

_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,21}$")


class RedditSource(SourceSettings):
    """A subreddit's top or hot posts (Reddit's public JSON listing)."""

    kind: Literal["reddit"]
    subreddit: str = Field(description="The subreddit's name, e.g. LocalLLaMA")
    sort: Literal["top", "hot"] = Field(default="top", description="top (of period) or hot.")
    period: Literal["day", "week", "month"] = Field(default="day", description="For top.")
    limit: int = Field(default=25, ge=1, le=100, description="Posts per run.")
    min_score: int = Field(default=0, ge=0, description="Skip posts with a lower score.")

    @field_validator("subreddit")
    @classmethod
    def _plain_subreddit(cls, value: str) -> str:
        text = value.strip()
        match = re.match(
            r"^(?:(?:https?://)?(?:www\.|old\.)?reddit\.com)?/?r/([A-Za-z0-9_]+)/?", text
        )
        if match:
            text = match.group(1)
        if not _SUBREDDIT.match(text):
            raise PydanticCustomError(
                "subreddit",
                "'{value}' is not a subreddit name",
                {"value": value, "fix": "write just the name, such as  subreddit: LocalLLaMA"},
            )
        return text


REDDIT = "https://www.reddit.com"
_GONE = ("[removed]", "[deleted]")


def listing_url(source: RedditSource) -> str:
    params = {"limit": str(source.limit), "raw_json": "1"}
    if source.sort == "top":
        params["t"] = source.period
    base = source.url or f"{REDDIT}/r/{source.subreddit}/{source.sort}.json"
    return f"{base}{'&' if urlsplit(base).query else '?'}{urlencode(params)}"


def parse_listing(content: bytes, url: str) -> tuple[list[SharedLink], list[str]]:
    """The readable posts of a listing, and what was skipped, in words."""
    data = parse_json(content, url, "a Reddit listing")
    children = data.get("data", {}).get("children") if isinstance(data, dict) else None
    if not isinstance(children, list):
        said = data.get("message") or data.get("reason") if isinstance(data, dict) else None
        raise ParseError(
            f"{url} did not answer with a Reddit listing ({said or 'unexpected JSON'})"
        )
    posts: list[SharedLink] = []
    nsfw = gone = absurd = 0
    for child in children:
        post = child.get("data") if isinstance(child, dict) else None
        if not isinstance(post, dict) or child.get("kind") != "t3" or not post.get("id"):
            continue
        if post.get("stickied"):
            continue
        if post.get("over_18"):
            nsfw += 1
            continue
        title = one_line(str(post.get("title") or ""))
        if not title or _removed(post):
            gone += 1
            continue
        absurd += implausible(post.get("score"), post.get("num_comments"))
        posts.append(_post(post))
    warnings = implausible_note(absurd, "post")
    if nsfw:
        warnings.append(f"{nsfw} NSFW {'post' if nsfw == 1 else 'posts'} skipped")
    if gone:
        warnings.append(f"{gone} removed or deleted {'post' if gone == 1 else 'posts'} skipped")
    return posts, warnings


def _removed(post: dict[str, Any]) -> bool:
    return bool(post.get("removed_by_category")) or (
        bool(post.get("is_self")) and str(post.get("selftext") or "").strip() in _GONE
    )


def _post(post: dict[str, Any]) -> SharedLink:
    # A permalink is a path on Reddit: an absolute one ("https://elsewhere/...") would make
    # another site the story's discussion link.
    path = str(post.get("permalink") or "")
    if not path.startswith("/") or path.startswith("//"):
        path = f"/comments/{post['id']}/"
    permalink = urljoin(REDDIT, path)
    link = str(post.get("url_overridden_by_dest") or post.get("url") or "").strip()
    own = post.get("is_self") or not link or urlsplit(link).scheme not in ("http", "https")
    if not own and urlsplit(link).hostname in ("www.reddit.com", "reddit.com", "old.reddit.com"):
        own = "/comments/" in link  # a cross-post of a thread is still a thread
    author = str(post.get("author") or "")
    return SharedLink(
        id=str(post["id"]),
        title=one_line(str(post.get("title") or "")),
        url=None if own else link,
        discussion=permalink,
        text=normalise_space(str(post.get("selftext") or "")),
        author=author if author and author != "[deleted]" else None,
        created=utc_from_epoch(post.get("created_utc")),
        votes=count(post.get("score")),
        comments=count(post.get("num_comments")),
    )


class RedditCollector:
    def collect(self, source: RedditSource, ctx: CollectContext) -> Fetched:
        response = ctx.get(listing_url(source), ctx.validators, accept="application/json")
        if response.not_modified:
            return Fetched(items=[], not_modified=True, validators=ctx.validators)
        posts, warnings = parse_listing(response.content, response.url)
        items: dict[str, Item] = {}
        for post in posts:
            if post.votes >= source.min_score:
                items.setdefault(f"reddit:{post.id}", post_item(source, post))
        return Fetched(
            items=list(items.values()), validators=response.validators, warnings=tuple(warnings)
        )


def post_item(source: RedditSource, post: SharedLink) -> Item:
    return shared_item(source, "reddit", post, {"subreddit": source.subreddit})


_REDDIT = re.compile(
    r"^(?:https?://)?(?:(?:www|old|new|np)\.)?reddit\.com/r/([A-Za-z0-9_]+)(?:[/?#].*)?$",
    re.IGNORECASE,
)
_WRITTEN_SUBREDDIT = re.compile(r"^(?:/?r/)?([A-Za-z0-9_]{2,21})/?$")


def subreddit_wanted(text: str, explicit: bool) -> Wanted | None:
    """A subreddit's address (or, with the kind named, r/name or the name alone)."""
    match = _REDDIT.match(text) or (_WRITTEN_SUBREDDIT.match(text) if explicit else None)
    if match is None:
        return None
    name = match.group(1)
    return Wanted("reddit", (("subreddit", name),), f"r/{name}", f"r/{name}")


def _follows_subreddit(node: Mapping[str, Any], wanted: Wanted) -> bool:
    if node.get("kind") != "reddit":
        return False
    have = str(node.get("subreddit", "")).strip().rstrip("/").rsplit("/", 1)[-1]
    return f"r/{have}".casefold() == wanted.target.casefold()


KIND = SourceKind(
    name="reddit",
    settings=RedditSource,
    collector=RedditCollector(),
    # Reddit limits anonymous clients, and a top-of-day list moves slowly.
    endpoint=("subreddit", "sort", "period"),
    interval=timedelta(hours=2),
    # A top post of the day on r/LocalLLaMA has 300-1,500 upvotes.
    votes=VoteScale("Reddit", "upvotes", hit=1000),
    shares_links=True,
    address=AddressRule(
        subreddit_wanted,
        "a subreddit, such as https://www.reddit.com/r/LocalLLaMA",
        _follows_subreddit,
    ),
    example="subreddit: LocalLLaMA",
)
