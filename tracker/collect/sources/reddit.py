"""A subreddit's top or hot posts, from Reddit's public JSON listing (no key).

``https://www.reddit.com/r/NAME/top.json?t=day`` answers with a ``Listing`` of
``t3`` posts: title, linked URL (or the post itself, for a text post), self
text, score, comment count, time. A link post's item is the linked article under
its canonical URL, so it joins the story of that post or paper; the thread is
its discussion. NSFW, removed and deleted posts are skipped and said in the
warnings; pinned (stickied) moderator posts are not news and are left out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from tracker.collect.sources.base import CollectContext, count, parse_json, utc_from_epoch
from tracker.collect.sources.shared_links import SharedLink, shared_item
from tracker.config import RedditSource
from tracker.errors import ParseError
from tracker.models import Fetched, Item
from tracker.text import normalise_space, one_line

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
    nsfw = gone = 0
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
        posts.append(_post(post))
    warnings = []
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
    permalink = urljoin(REDDIT, str(post.get("permalink") or f"/comments/{post['id']}/"))
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
