"""Links a community shared and discussed (a Hacker News story, a Reddit post): one shape,
and one way to turn it into an item.

The item is the linked article under its canonical URL, so it joins the story of the
post or paper it links to (a link to an arXiv paper is that paper); a text post with no
link is its thread. The thread is one more link, and the votes and comments are the
item's engagement, never part of its fingerprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.models import Engagement, Item, ItemKind, content_hash
from tracker.urls import arxiv_paper, canonical_url


@dataclass(frozen=True)
class SharedLink:
    id: str
    title: str
    #: The linked article; None for a text post (Ask HN, a self post).
    url: str | None
    #: The thread where people discuss it.
    discussion: str
    text: str
    author: str | None
    created: datetime | None
    votes: int
    comments: int


#: What a community appends to a title to say what the link is ("... (2017) [pdf]",
#: "[video]"): about the link, not the story's name.
_LINK_MARK = re.compile(r"\s*[\[(](?:pdf|video|audio|slides)[\])]\s*$", re.I)


def story_title(title: str) -> str:
    """The title without the community's trailing link marks ("[pdf]", "[video]")."""
    while (cut := _LINK_MARK.sub("", title)) != title and cut:
        title = cut
    return title


def shared_item(source: Any, prefix: str, link: SharedLink, extra: dict[str, object]) -> Item:
    """``link`` as an item of ``source`` (its ``name`` and ``kind``), id ``prefix:id``."""
    url = canonical_url(link.url) if link.url else link.discussion
    kind = ItemKind.POST
    extra = {**extra, "discussion": link.discussion}
    paper = arxiv_paper(url)
    if paper is not None:  # a link to a paper is the paper: it joins its story
        kind = ItemKind.PAPER
        extra["arxiv_id"] = paper
    return Item(
        id=f"{prefix}:{link.id}",
        source=source.name,
        source_kind=source.kind,
        kind=kind,
        url=url,
        title=story_title(link.title),
        text=link.text,
        authors=(link.author,) if link.author else (),
        published=link.created,
        extra=extra,
        fingerprint=content_hash(link.id, link.title, link.url, link.text),
        engagement=Engagement(source.kind, link.votes, link.comments),
    )
