"""A feed entry's article page: fetched when the entry is only a teaser, queued with its
attempts when the page fails, and turned into the item's full text when it arrives.

The policy (when to ask again, when to give up) is ``tracker.collect.pages``'; this is the
collector's side of it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from tracker.collect.http import is_public_host
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


#: Article pages of one source fetched at once (the client's per-host limit applies too).
PAGE_WORKERS = 4


def fetch_pages(
    source: str,
    always_public: bool,
    ctx: CollectContext,
    feed_url: str,
    queue: PageQueue,
    items: dict[str, Item],
    warnings: list[str],
) -> tuple[int, int]:
    """Fetch the due pages of ``source`` (a feed at ``feed_url``; ``always_public``: its
    ``public_only``) the run's budget allows; how many came, how many failed.

    Several at once (``PAGE_WORKERS``; the client's per-host limit still caps how many
    go to one host): a first run of a teaser feed asks for dozens of pages, and one at a
    time 50 pages answering in 3 s took 2.5 minutes. What each page brings is settled
    here, in this thread, as it comes."""
    due = queue.due(ctx.now())
    ctx.hosts.want(source, Counter(t.host for t in due))
    asked = failed = 0
    notes: list[str] = []
    public_only: bool | None = True if always_public else None
    running: dict[Future[Article | PageFailure], tuple[PageTask, Item]] = {}

    def settle(future: Future[Article | PageFailure]) -> None:
        nonlocal failed
        task, base = running.pop(future)
        article: Article | PageFailure = PageFailure("interrupted")
        try:
            article = future.result()
        finally:
            ctx.hosts.end(
                task.host,
                fetched=isinstance(article, Article),
                refused=isinstance(article, PageFailure) and article.host_refused,
            )
        if isinstance(article, Article):
            items[task.item_id] = with_article(base, article)
            queue.settle(task.item_id)
            return
        after = ctx.page_policy.after_failure(task, article, ctx.now())
        queue.update(after)
        notes.append(page_note(after, article, ctx.page_policy))
        failed += 1

    try:
        with ThreadPoolExecutor(PAGE_WORKERS, thread_name_prefix="pages") as pool:
            for task in due:
                for future in [f for f in running if f.done()]:
                    settle(future)  # a host that refuses is known before more are asked
                if asked >= ctx.max_pages or ctx.stopping():
                    break
                base = items.get(task.item_id) or ctx.queued.get(task.item_id)
                if base is None:  # not loaded for this run (it fell due meanwhile)
                    continue
                dead = ctx.hosts.given_up(task.host)
                if dead:
                    if task.attempts:  # a page never asked for waits for the host
                        given_up = ctx.page_policy.give_up(task, dead)
                        queue.update(given_up)
                        notes.append(page_note(given_up, PageFailure(dead), ctx.page_policy))
                    continue
                if not _begin(ctx, source, task.host, running, settle):
                    continue
                if public_only is None:
                    # A feed on a private address (an intranet, a test server) may link
                    # to pages there too; a public feed may not send us inside.
                    public_only = is_public_host(urlsplit(feed_url).hostname or "")
                asked += 1
                future = pool.submit(fetch_article, ctx, task.url, public_only)
                running[future] = (task, base)
            for future in as_completed(list(running)):
                settle(future)
    finally:
        ctx.hosts.want(source, {})  # what it leaves of a host's budget is the others'
    warnings.extend(summarised(notes))
    return asked - failed, failed


def _begin(
    ctx: CollectContext,
    source: str,
    host: str,
    running: Mapping[Future[Article | PageFailure], tuple[PageTask, Item]],
    settle: Callable[[Future[Article | PageFailure]], None],
) -> bool:
    """Whether a page of ``host`` may be asked for now. Until a page has come from a
    host, its requests in flight count against it (``HostBook.begin``): while some are
    (this source's, or another's on the same host), wait for one to end and ask again."""
    while not ctx.hosts.begin(source, host):
        ours = [f for f, (task, _) in running.items() if task.host == host]
        if ours:
            settle(next(as_completed(ours)))
        elif ctx.hosts.held_by_flight(host) and not ctx.stopping():
            time.sleep(0.02)  # another source's requests to it: they end soon
        else:
            return False
    return True
