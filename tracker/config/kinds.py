"""Source kinds: each kind of source says what it is once, and the rest of tracker reads it here.

A kind (``feed``, ``arxiv``, ``hackernews``, ...) is one module in ``tracker/collect/sources/``
that ends with a ``SourceKind``: the ``kind:`` written in ``sources.yaml``, the settings model
that validates such an entry, the collector, how often it is collected when no ``interval``
is given, how its community's votes count, whether its items are links people shared, and
how an address pasted into ``sources add`` is recognised as one of its sources. The built-in
kinds are listed in ``tracker/collect/sources/__init__.py``, a line each; ``register`` adds
another (a test's, a plugin's) and everything above follows: validation, collecting,
scheduling, ranking, adding by address.

The registry stands here, below every stage, because validating ``sources.yaml`` is the
first thing that needs it. The built-in kinds' modules stand in the collect stage above, so
they are loaded by name on first use (as llm loads its default plugins), never imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from tracker.config.names import visible
from tracker.config.values import Interval, Strict, Url

#: The module whose ``BUILT_IN`` lists the kinds tracker ships with.
BUILT_IN_MODULE = "tracker.collect.sources"


class SourceSettings(Strict):
    """What every entry of ``sources:`` may say, whatever its kind; each kind's model adds
    its own keys and a ``kind: Literal[...]``."""

    kind: str
    name: str = Field(min_length=1, max_length=80, description="Unique name of the source.")
    url: Url | None = Field(default=None, description="Endpoint override (mirror, test server).")
    interval: Interval | None = Field(default=None, description="How often to collect.")
    weight: float = Field(default=1.0, ge=0, le=100, description="Ranking weight.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels.")
    enabled: bool = Field(default=True, description="Set false to pause the source.")

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = visible(value)  # no zero-width or direction-changing characters
        if not value:
            raise PydanticCustomError(
                "name", "the name is blank", {"fix": "give the source a short unique name"}
            )
        return value


@dataclass(frozen=True)
class VoteScale:
    """How a community's votes count: 50 points is a good day on Hacker News, 50 upvotes a
    top pick on Daily Papers, 50 on a big subreddit a quiet post."""

    #: The community, for people: "Hacker News".
    community: str
    #: What its votes are called: "points", "upvotes".
    votes: str
    #: Votes at which a story is the community's hit and its popularity is full.
    hit: int


@dataclass(frozen=True)
class Wanted:
    """What an address given to ``sources add`` asks to follow, before anything is fetched."""

    kind: str
    #: What it follows, as the keys of its entry in sources.yaml (url:, repo:, ...).
    keys: tuple[tuple[str, str | int], ...]
    #: How to show what it follows: the feed's address, owner/repo, r/name, a site.
    target: str
    #: What to name it after when no name is given (a feed: its title, found later).
    name_hint: str = ""


@dataclass(frozen=True)
class AddressRule:
    """How ``sources add`` tells an address of this kind, and whether it is followed."""

    #: ``(text, explicit)`` -> what it asks for, or None when it is not this kind's address.
    #: ``explicit``: the person named the kind, so shorter forms (owner/repo) are accepted.
    recognise: Callable[[str, bool], Wanted | None]
    #: An address of the kind, for the message when one is not.
    example: str
    #: Whether an entry of sources.yaml (a mapping) already follows ``Wanted``.
    follows: Callable[[Mapping[str, Any], Wanted], bool]
    #: Tried after every other kind, because it takes any address (a feed).
    last: bool = False
    #: Fetched before it is added, so that only one that works is (a feed, or the feed
    #: a web page links to); other kinds' collectors fetch fixed public APIs.
    probe: bool = False
    #: What a person is told of a source just added this way ("" for nothing).
    note: str = ""


@dataclass(frozen=True)
class SourceKind:
    """Everything tracker needs to know of a kind of source, declared once by its module."""

    name: str
    settings: type[SourceSettings]
    #: The kind's ``Collector`` (``tracker.collect.sources.base``); held here, used there.
    collector: Any
    #: How often a source of this kind is collected when it gives no ``interval``.
    interval: timedelta
    #: Its items carry a community's votes (``Engagement.community`` is the kind's name).
    votes: VoteScale | None = None
    #: Its items are links people shared: they are placed after the articles they link.
    shares_links: bool = False
    #: How ``sources add`` recognises its addresses (None: it cannot be added by address).
    address: AddressRule | None = None
    #: The keys besides ``url`` that say what is fetched: validators saved for one endpoint
    #: are not sent to another once the user edits them.
    endpoint: tuple[str, ...] = ()
    #: The key that says what a source of this kind follows, for "is required" messages.
    example: str = ""


_kinds: dict[str, SourceKind] = {}


def kinds() -> Mapping[str, SourceKind]:
    """Every kind, by name, built-in ones first in the order they are listed."""
    if not _kinds:
        for kind in importlib.import_module(BUILT_IN_MODULE).BUILT_IN:
            _kinds.setdefault(kind.name, kind)
    return _kinds


def kind_of(name: str) -> SourceKind:
    """The kind called ``name``; KeyError when there is none."""
    return kinds()[name]


def links_last() -> tuple[str, ...]:
    """The kinds whose items are links people shared, placed after the articles they link."""
    return tuple(name for name, kind in kinds().items() if kind.shares_links)


def register(kind: SourceKind) -> None:
    """Add a kind (or replace the one of that name)."""
    kinds()
    _kinds[kind.name] = kind


@contextmanager
def registered(kind: SourceKind) -> Iterator[SourceKind]:
    """``kind`` registered for the block only, whatever it replaces restored after."""
    before = kinds().get(kind.name)
    register(kind)
    try:
        yield kind
    finally:
        if before is None:
            del _kinds[kind.name]
        else:
            _kinds[kind.name] = before
