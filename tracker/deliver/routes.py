"""Digest routes: which stories go where, and how often. Pure.

A community splits its reading: papers in one channel, releases in another,
a weekly round-up for those who do not want a daily one. A route is one such
destination with its own choice of stories, size and cadence; each keeps its
own record of what it sent, so a story can reach every route that takes it,
once each. ``sources.yaml`` without ``digest.routes`` has one route, named
``digest``: the daily digest as it always was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from tracker.config import Config
from tracker.config.digest import RouteSettings
from tracker.config.values import WEEKDAYS, time_of
from tracker.models import DEFAULT_ROUTE, ItemKind, Story

#: A weekly digest takes a week of news unless told otherwise.
WEEK = timedelta(days=7)

_SECTION_KINDS = {
    "papers": ItemKind.PAPER,
    "posts": ItemKind.POST,
    "releases": ItemKind.RELEASE,
}


@dataclass(frozen=True)
class Route:
    """A route with every default filled in from ``digest:``."""

    name: str
    at: time
    timezone: str
    #: 0 (Monday) to 6 for a weekly route; None for a daily one.
    weekday: int | None
    size: int
    max_age: timedelta
    channel_id: int | None = None
    #: Folder under ``digests/`` when there is no Discord; None writes to ``digests/`` itself.
    file: str | None = None
    #: The kinds of story it takes; None takes all.
    kinds: frozenset[ItemKind] | None = None
    #: The sources whose stories it takes (named, or by tag); None takes all.
    sources: frozenset[str] | None = None

    def takes(self, story: Story) -> bool:
        """Whether a story belongs in this route: of a section it takes, and from one of
        its sources (a story told by several sources needs only one of them)."""
        if self.kinds is not None and story.kind not in self.kinds:
            return False
        return self.sources is None or any(s in self.sources for s in story.sources)

    @property
    def cadence(self) -> str:
        """How often, in words: "daily at 08:00 (UTC)", "weekly on Monday at 09:00 (UTC)"."""
        when = "daily" if self.weekday is None else f"weekly on {WEEKDAYS[self.weekday].title()}"
        return f"{when} at {self.at:%H:%M} ({self.timezone})"


def routes(config: Config) -> list[Route]:
    """Every route of ``config``, in the file's order; the implicit one when none is named."""
    digest = config.digest
    if not digest.routes:
        return [
            Route(
                name=DEFAULT_ROUTE,
                at=digest.at,
                timezone=digest.timezone,
                weekday=None,
                size=digest.size,
                max_age=digest.max_age,
                channel_id=digest.channel_id,
            )
        ]
    return [_resolve(r, config) for r in digest.routes]


def route_named(config: Config, name: str | None) -> Route:
    """The route called ``name`` (any case), or the first when ``name`` is None."""
    every = routes(config)
    if name is None:
        return every[0]
    for route in every:
        if route.name.casefold() == name.casefold():
            return route
    known = ", ".join(r.name for r in every)
    raise KeyError(f"no digest route is named {name!r}; the routes are: {known}")


def _resolve(settings: RouteSettings, config: Config) -> Route:
    digest = config.digest
    weekly = settings.cadence == "weekly"
    weekday = WEEKDAYS.index(settings.day or "monday") if weekly else None
    at = time_of(settings.time) if settings.time is not None else digest.at
    max_age = settings.max_age or (max(digest.max_age, WEEK) if weekly else digest.max_age)
    sources: frozenset[str] | None = None
    if settings.sources or settings.tags:
        tags = set(settings.tags)
        sources = frozenset(settings.sources) | {
            s.name for s in config.sources if tags.intersection(s.tags)
        }
    return Route(
        name=settings.name,
        at=at,
        timezone=settings.timezone or digest.timezone,
        weekday=weekday,
        size=settings.size or digest.size,
        max_age=max_age,
        channel_id=settings.channel_id or digest.channel_id,
        file=settings.file or settings.name,
        kinds=frozenset(_SECTION_KINDS[s] for s in settings.sections) or None,
        sources=sources,
    )
