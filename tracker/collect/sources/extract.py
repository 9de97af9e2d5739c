"""The main text and metadata of an article page, via trafilatura.

Used when a feed entry carries only a teaser. Pure: takes the page's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import trafilatura

from tracker.collect.sources.base import parse_iso


@dataclass(frozen=True)
class Article:
    text: str
    title: str | None = None
    author: str | None = None
    published: datetime | None = None


def extract_article(page: bytes | str, url: str | None = None) -> Article | None:
    """The article in ``page``, or None when no main text can be found.

    Comments are left out: readers want the post, not the thread under it.
    Over the recorded pages in ../shared/fixtures/html this meets every
    must-contain / must-not-contain expectation, as trafilatura's defaults do.
    """
    document = trafilatura.bare_extraction(
        page, url=url, include_comments=False, with_metadata=True
    )
    if document is None or isinstance(document, dict) or not document.text:
        return None
    return Article(
        text=str(document.text).strip(),
        title=document.title or None,
        author=document.author or None,
        published=parse_iso(document.date),
    )
