"""A feed entry's article page: fetched when the entry is only a teaser, queued with its
attempts when the page fails, and turned into the item's full text when it arrives.

The policy (when to ask again, when to give up) is ``tracker.collect.pages``'; this is the
collector's side of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from tracker.collect.pages import (
    PageFailure,
    PagePolicy,
    page_failure,
)
from tracker.collect.sources.base import CollectContext
from tracker.collect.sources.extract import Article, extract_article
from tracker.errors import SourceError
from tracker.models import WITH_PAGE, Item, PageChanges, PageTask, reader_hash

#: What an article page is asked for as.
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


class PageQueue:
    """One source's article-page queue during a collect: the stored tasks, and what this
    collect changes about them."""

    def __init__(self, stored: Mapping[str, PageTask]):
        self._stored = dict(stored)
        self._tasks = dict(stored)
        self._settled: set[str] = set()
        self._order: dict[str, int] = {}

    def want(self, item_id: str, url: str) -> None:
        """The item's entry wants its page. A task already queued for the same address keeps
        its history (a given-up page stays given up while the entry links to it)."""
        current = self._tasks.get(item_id)
        if current is None or current.url != url:
            self._tasks[item_id] = PageTask(item_id, url)
        self._settled.discard(item_id)
        self._order.setdefault(item_id, len(self._order))

    def settle(self, item_id: str) -> None:
        """The item needs no page request any more (fetched, or not wanted)."""
        self._tasks.pop(item_id, None)
        self._settled.add(item_id)

    def settle_all(self) -> None:
        for item_id in list(self._tasks):
            self.settle(item_id)

    def update(self, task: PageTask) -> None:
        self._tasks[task.item_id] = task

    def due(self, now: datetime) -> list[PageTask]:
        """Due tasks, pages never asked for first, each group in the feed's order (newest
        posts first, as feeds list them), then those the feed no longer lists."""
        late = len(self._order)
        due = [t for t in self._tasks.values() if t.due(now)]
        return sorted(due, key=lambda t: (t.attempts > 0, self._order.get(t.item_id, late)))

    def changes(self) -> PageChanges:
        upsert = tuple(t for i, t in self._tasks.items() if self._stored.get(i) != t)
        remove = tuple(i for i in self._settled if i in self._stored)
        return PageChanges(upsert, remove)


PAGE_TYPES = ("text/html", "application/xhtml+xml")


def fetch_article(ctx: CollectContext, link: str, public_only: bool) -> Article | PageFailure:
    try:
        page = ctx.get(
            link, page=True, accept=PAGE_ACCEPT, public_only=public_only, content_types=PAGE_TYPES
        )
    except SourceError as exc:
        return page_failure(exc)
    try:
        article = extract_article(page.content, page.url)
    except Exception as exc:  # trafilatura on hostile HTML: keep the teaser, never fail the source
        return PageFailure(
            f"{link} could not be read as an article ({type(exc).__name__})",
            permanent=True,
            host_refused=False,
        )
    if article is None:
        return PageFailure(
            f"{link} has no article text that could be found", permanent=True, host_refused=False
        )
    return article


def page_note(after: PageTask, failure: PageFailure, policy: PagePolicy) -> str:
    if after.gave_up:
        tries = "" if after.attempts <= 1 else f" after {after.attempts} attempts"
        return f"full text not fetched{tries}; the teaser is kept for good: {failure.message}"
    if failure.retry_after is not None or after.next_attempt is None:
        return f"full text not fetched yet: {failure.message}"
    return (
        f"full text not fetched: {failure.message} "
        f"(attempt {after.attempts} of {policy.max_attempts}; next after "
        f"{after.next_attempt:%Y-%m-%d %H:%M} UTC)"
    )


#: Page notes shown one by one before the rest are counted.
SHOWN_PAGE_NOTES = 5


def summarised(notes: list[str]) -> list[str]:
    if len(notes) <= SHOWN_PAGE_NOTES:
        return notes
    rest = len(notes) - SHOWN_PAGE_NOTES
    return [*notes[:SHOWN_PAGE_NOTES], f"and {rest} more article pages not fetched"]


def with_article(item: Item, article: Article) -> Item:
    """The teaser item with its article's text: what the item becomes once its page is read.

    The fingerprint gains ``WITH_PAGE`` so that the next run knows the page was read
    for this very entry; ``teaser_hash`` lets processing tell the arrival of the full
    text from an edit by the author.
    """
    teaser = item.text
    authors = item.authors or ((article.author,) if article.author else ())
    title = item.title
    if title == UNTITLED and article.title:
        title = article.title
    return replace(
        item,
        title=title,
        text=article.text,
        authors=authors,
        published=item.published or article.published,
        extra={
            **item.extra,
            "full_text": True,
            "teaser": teaser[:1000],
            "teaser_hash": reader_hash(item.title, teaser),
        },
        fingerprint=item.fingerprint.removesuffix(WITH_PAGE) + WITH_PAGE,
    )


#: An entry without a title of its own (its page's title stands in when it has one).
UNTITLED = "(untitled)"
