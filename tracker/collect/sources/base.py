"""The interface every collector implements, and what it is given to work with."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tracker.collect.http import HttpClient, Response
from tracker.collect.pages import HostBook, PagePolicy
from tracker.errors import FetchError, ParseError, SourceError
from tracker.models import Fetched, Item, PageTask, Validators, host_of


@dataclass(frozen=True)
class CollectContext:
    """What a collector may use: the shared HTTP client and what we already know."""

    http: HttpClient
    #: Validators from the last successful fetch, for conditional GET.
    validators: Validators = field(default_factory=Validators)
    #: Item id -> fingerprint of what is already stored for this source.
    known: Mapping[str, str] = field(default_factory=dict)
    github_token: str | None = field(default=None, repr=False)
    #: At most this many linked pages are fetched for full text per source per run.
    max_pages: int = 20
    #: True once the run should end: no more linked pages are fetched (they stay in
    #: the queue for the next run, as past ``max_pages``).
    stopping: Callable[[], bool] = lambda: False
    #: The run's knowledge of hosts (Retry-After waits, refusals, the page budget),
    #: shared by every source of the run.
    hosts: HostBook = field(default_factory=HostBook)
    #: The source's article-page queue, by item id, as stored.
    pages: Mapping[str, PageTask] = field(default_factory=dict)
    #: Stored items whose page is due, for when the feed does not list them (a 304).
    queued: Mapping[str, Item] = field(default_factory=dict)
    #: Item id -> ``teaser_hash`` of stored items whose article was read: an entry that
    #: changed only its timestamps keeps its article.
    teaser_hashes: Mapping[str, str] = field(default_factory=dict)
    page_policy: PagePolicy = field(default_factory=PagePolicy)

    def now(self) -> datetime:
        return self.hosts.now()

    def get(
        self, url: str, validators: Validators | None = None, page: bool = False, **kwargs: Any
    ) -> Response:
        """``http.get``, as long as the host has not asked us to wait (nor, for an article
        ``page``, paused its pages); a Retry-After it answers with is remembered for the
        host, for every source of this run and the next."""
        host = host_of(url)
        wait = self.hosts.waiting(host, page)
        if wait is not None:
            raise FetchError(
                f"{host} asked us not to come back before {wait.until:%Y-%m-%d %H:%M} UTC "
                f"({wait.reason}); not asked again before then",
                retry_after=wait.until - self.now(),
            )
        try:
            return self.http.get(url, validators, **kwargs)
        except SourceError as exc:
            if exc.retry_after is not None:
                self.hosts.wait(host, exc.retry_after, str(exc), pages_only=page)
            raise


class Collector(Protocol):
    """Fetches one source and turns what it finds into items.

    Raises ``SourceError`` when the source cannot be collected; the caller
    records the failure and goes on with the other sources.
    """

    def collect(self, source: Any, ctx: CollectContext) -> Fetched: ...


def parse_json(content: bytes, url: str, what: str) -> Any:
    """A JSON API's answer, or a ``ParseError`` saying what came instead: an HTML page (a
    login wall, a block page, a captive portal) is named as such rather than as a
    JSON syntax error at line 1."""
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or (
        head.startswith(b"<") and b"<html" in head
    ):
        raise ParseError(
            f"{url} answered with an HTML page, not {what}; check the url:, or the site may "
            "be blocking automated clients"
        )
    try:
        return json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{url} did not answer with valid JSON ({exc})") from None


def utc_from_epoch(value: Any) -> datetime | None:
    """Seconds since 1970 (an int, float or numeric string) as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


#: More votes or comments than any post anywhere has had: a count past it is a broken or
#: hostile answer, counted as none (it could neither be stored as SQLite's 64-bit integer
#: past 2^63 nor be let rank a story above every other).
MAX_COUNT = 10_000_000


def count(value: Any) -> int:
    """A vote or comment count from an API that may send null, a string or a float; 0 for
    one that is not a count or past ``MAX_COUNT`` (``implausible`` tells the latter)."""
    try:
        number = max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if number <= MAX_COUNT else 0


def implausible(*values: Any) -> bool:
    """Whether any of the counts is a number past ``MAX_COUNT`` (dropped by ``count``)."""
    for value in values:
        try:
            if int(value) > MAX_COUNT:
                return True
        except (TypeError, ValueError, OverflowError):
            continue
    return False


def implausible_note(n: int, what: str) -> list[str]:
    """The collect's note for ``n`` items whose counts were dropped."""
    if not n:
        return []
    items = what if n == 1 else f"{what}s"
    return [f"{n} {items} with a vote or comment count past {MAX_COUNT:,}: counted as none"]


def utc_from_struct(value: Any) -> datetime | None:
    """feedparser's UTC ``time.struct_time`` as an aware datetime."""
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = value[:6]
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 / RFC 3339 timestamp as an aware UTC datetime."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


__all__ = [
    "CollectContext",
    "Collector",
    "count",
    "parse_iso",
    "parse_json",
    "utc_from_epoch",
    "utc_from_struct",
]
