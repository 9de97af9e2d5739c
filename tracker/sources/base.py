"""The interface every collector implements, and what it is given to work with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tracker.config import Source
from tracker.http import HttpClient
from tracker.models import Fetched, Validators


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
    #: True once the run should end: no more linked pages are fetched (they are
    #: postponed to the next run, as past ``max_pages``).
    stopping: Callable[[], bool] = lambda: False


class Collector(Protocol):
    """Fetches one source and turns what it finds into items.

    Raises ``SourceError`` when the source cannot be collected; the caller
    records the failure and goes on with the other sources.
    """

    def collect(self, source: Any, ctx: CollectContext) -> Fetched: ...


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


__all__ = ["CollectContext", "Collector", "Source", "parse_iso", "utc_from_struct"]
