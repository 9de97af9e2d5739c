"""The data tracker passes around: items as collected, and results of collecting.

Frozen dataclasses rather than dicts so that a typo is a type error, not a
silently missing key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import numpy as np


class ItemKind(StrEnum):
    """What an item is, independent of where it came from."""

    PAPER = "paper"
    POST = "post"
    RELEASE = "release"


@dataclass(frozen=True)
class Engagement:
    """What a community made of an item when it was collected: votes (points, upvotes,
    score) and comments. ``community`` is the source kind it was counted in, because 50
    points on Hacker News and 50 upvotes on Daily Papers do not mean the same."""

    community: str
    votes: int = 0
    comments: int = 0


@dataclass(frozen=True)
class Item:
    """One thing a source published: a paper, a post or a release.

    ``id`` is stable across runs and unique within its source: the same entry
    fetched again maps to the same id, which is what makes re-runs idempotent.
    """

    id: str
    source: str
    source_kind: str
    kind: ItemKind
    url: str
    title: str
    text: str = ""
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: Hash of the entry as the source published it. Collectors set it before
    #: enriching an item (e.g. fetching the full article), so that an unchanged
    #: entry is recognised without fetching its page again.
    fingerprint: str = ""
    #: Votes and comments as of this collect. Not part of the fingerprint: a story
    #: gaining points is more popular, not updated.
    engagement: Engagement | None = field(default=None, compare=False)

    @property
    def version_key(self) -> str:
        """What changes when the item changed upstream."""
        return self.fingerprint or content_hash(
            self.url, self.title, self.text, list(self.authors), _iso(self.updated), self.extra
        )


#: The keys of ``Item.extra`` that name who publishes an item: a feed's title, a project.
PUBLISHER_KEYS = ("feed_title", "repo")


def byline(publishers: Iterable[str | None], authors: Iterable[str]) -> str:
    """Who says it, as one line: "Logits and Coffee; logits". A reader names a post by its
    blog or author ("what did the Logits and Coffee blogger train on?") more often than by
    its title, and neither stands in its text."""
    names: list[str] = []
    for name in (*publishers, *authors):
        name = " ".join((name or "").split())
        if name and name not in names:
            names.append(name)
    return "; ".join(names)


def reader_hash(title: str, text: str) -> str:
    """What a reader of an item sees, its title and text, as a hash: an item whose words
    did not change is not news, whatever else moved."""
    return hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()


def content_hash(*parts: Any) -> str:
    """A stable hash of JSON-able parts."""
    payload = json.dumps(
        list(parts),
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


class Status(StrEnum):
    """How collecting one source ended."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    ERROR = "error"


@dataclass(frozen=True)
class Validators:
    """HTTP cache validators remembered between runs for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    """What a collector produced for one source: items, or a 304, plus new validators."""

    items: list[Item]
    not_modified: bool = False
    validators: Validators = Validators()
    warnings: tuple[str, ...] = ()
    #: What happened to the source's article-page queue (feeds only).
    page_changes: PageChanges | None = None
    #: Article pages fetched this run (their items are among ``items``), and pages that failed.
    pages_fetched: int = 0
    pages_failed: int = 0
    #: The source's URL redirects permanently (301/308) to this address.
    moved_to: str | None = None


@dataclass(frozen=True)
class SourceResult:
    """The outcome of collecting one source, as reported to people and scripts."""

    source: str
    kind: str
    status: Status
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    #: After a failure: when the source will be tried again (backoff).
    retry_after: datetime | None = None
    #: Not tried this run because it is backing off after earlier failures.
    backing_off: bool = False
    #: Article pages fetched this run, those that failed, and those still waiting in the
    #: queue afterwards.
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_pending: int = 0
    #: The source's URL moved for good to this address (reported the run it is noticed).
    moved_to: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "status": self.status.value,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "error": self.error,
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
            "retry_after": self.retry_after.isoformat() if self.retry_after else None,
            "backing_off": self.backing_off,
            "pages_fetched": self.pages_fetched,
            "pages_failed": self.pages_failed,
            "pages_pending": self.pages_pending,
            "moved_to": self.moved_to,
        }


@dataclass(frozen=True)
class StoryMember:
    """One item inside a story: where it came from and where it points."""

    source: str
    item_id: str
    url: str
    title: str
    kind: ItemKind
    added: datetime
    #: How recent the item is: its newest own date (published or updated), else when it
    #: was collected, except for a source's backlog (its first collect), which has none.
    dated: datetime | None = None
    #: Where people discuss it (a Hacker News thread, a Reddit post, a Hugging Face page).
    discussion: str | None = None
    engagement: Engagement | None = None
    #: Why it joined the story: "new story", "same arxiv:2411.01234", "similar (0.984)".
    joined: str | None = None


@dataclass(frozen=True)
class Story:
    """One real-world thing (a paper, an announcement, a release) with every item about it."""

    id: str
    kind: ItemKind
    title: str
    url: str
    first_seen: datetime
    last_changed: datetime
    published: datetime | None
    members: tuple[StoryMember, ...]
    #: A later item updated the story (a new version of the paper, a new release).
    updated: bool = False
    update_note: str | None = None
    summary: str | None = None
    summary_method: str | None = None

    @property
    def newest(self) -> datetime | None:
        """When the newest of its items was published or updated (see ``StoryMember.dated``)."""
        return max((m.dated for m in self.members if m.dated is not None), default=None)

    @property
    def links(self) -> list[str]:
        """The story's own link, each member's, then where each is discussed."""
        discussions = [m.discussion for m in self.members if m.discussion]
        return list(dict.fromkeys([self.url, *(m.url for m in self.members), *discussions]))

    @property
    def engagement(self) -> dict[str, Engagement]:
        """Votes and comments summed over the members, per community."""
        totals: dict[str, Engagement] = {}
        for member in self.members:
            e = member.engagement
            if e is None:
                continue
            was = totals.get(e.community, Engagement(e.community))
            totals[e.community] = Engagement(
                e.community, was.votes + e.votes, was.comments + e.comments
            )
        return totals

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(m.source for m in self.members))


#: Suffix of the fingerprint of an item whose text came from its linked page.
WITH_PAGE = "+page"


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


@dataclass(frozen=True)
class PageTask:
    """One item's article page, as the queue remembers it."""

    item_id: str
    url: str
    attempts: int = 0
    last_error: str | None = None
    last_attempt: datetime | None = None
    #: Not asked for before this; None means due now.
    next_attempt: datetime | None = None
    #: The item keeps its teaser for good.
    gave_up: bool = False

    @property
    def host(self) -> str:
        return host_of(self.url)

    def due(self, now: datetime) -> bool:
        return not self.gave_up and (self.next_attempt is None or self.next_attempt <= now)


@dataclass(frozen=True)
class PageChanges:
    """What one collect did to a source's queue: tasks to write, and items whose page is
    settled (fetched, or no longer wanted)."""

    upsert: tuple[PageTask, ...] = ()
    remove: tuple[str, ...] = ()


_LEADING_URL = re.compile(r"^\S+://\S+\s+")


def short_reason(message: str) -> str:
    """A page error without the page's address, so that alike errors count together:
    "answered 403 Forbidden (the server refuses access)"."""
    return _LEADING_URL.sub("", message).strip() or message


@dataclass(frozen=True)
class HostWait:
    """No request to ``host`` before ``until``: it asked (Retry-After), or, ``pages_only``,
    it refused page after page and its article pages are paused (its feed is not)."""

    host: str
    until: datetime
    reason: str
    pages_only: bool = False
    #: Pauses of pages in a row with no page fetched from the host in between.
    strikes: int = 0


@dataclass(frozen=True)
class Candidate:
    """A recent story an item may be a near duplicate of."""

    story_id: str
    vector: np.ndarray
    first_seen: datetime
    #: The papers and releases the story is (``arxiv:...``, ``release:...`` keys).
    identities: frozenset[str] = frozenset()


#: Keys that name what a story is (a paper, a release): two different ones are two stories.
IDENTITY_PREFIXES = ("arxiv:", "release:", "paper:")


def identities(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(k for k in keys if k.startswith(IDENTITY_PREFIXES))


@dataclass(frozen=True)
class Match:
    """Where an item goes, and why."""

    story_id: str | None  # None: start a new story
    reason: str  # "key", "update", "similar" or "new"
    similarity: float | None = None
    key: str | None = None


@dataclass(frozen=True)
class Plan:
    """What placing one item changes, decided here and applied by the story store.

    ``take_over``: the item's title, link and kind become the story's (a paper or a
    release joining a story a post began: the story is about that paper or release; a
    tool's new release). ``update_note``: the story is news again (marked updated, its
    summary made anew). ``match`` says why the item went where it did, and is kept with
    the item, so "why are these one story?" has an answer.
    """

    match: Match
    take_over: bool = False
    update_note: str | None = None

    @property
    def story_id(self) -> str | None:
        return self.match.story_id

    @property
    def why(self) -> str:
        """The match in words: "new story", "same arxiv:2411.01234", "similar (0.984)"."""
        m = self.match
        if m.reason == "new" or m.story_id is None:
            return "new story"
        if m.reason == "similar" and m.similarity is not None:
            return f"similar ({m.similarity:.3f})"
        if m.reason == "update":
            return f"update of {m.key}"
        if m.reason == "edit":
            return "the same item, edited"
        return f"same {m.key}" if m.key else m.reason


@dataclass(frozen=True)
class DigestEntry:
    story_id: str
    kind: ItemKind
    title: str
    summary: str | None
    sources: tuple[str, ...]
    links: tuple[str, ...]
    #: What changed, when the story was sent before and has been updated since.
    update: str | None = None
    score: float = 0.0
    pinned: bool = False
    #: What the crowd made of it: "412 points and 132 comments on Hacker News" ("" if none).
    engagement: str = ""


@dataclass(frozen=True)
class DigestSection:
    name: str
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True)
class Digest:
    created: datetime
    #: The previous digest's time: stories new or updated since then are in this one.
    since: datetime | None
    sections: tuple[DigestSection, ...] = ()
    #: Stories considered but left out because the digest was full.
    left_out: int = 0
    #: A closing line: the first digest ends by saying when the next one comes.
    closing: str | None = None
    #: Two or three lines that open the digest: what the day was about.
    headline: str | None = None
    #: Which digest this is, when a community has several ("papers", "releases, weekly").
    title: str | None = None
    #: When a source was last collected, when none has been since the previous digest:
    #: a quiet digest then says collection failed, not that the day was quiet.
    unreachable_since: datetime | None = None

    @property
    def quiet(self) -> bool:
        return not any(section.entries for section in self.sections)

    @property
    def quiet_note(self) -> str:
        """What a digest with no story says: a quiet day, or that nothing could be read."""
        if self.unreachable_since is not None:
            return (
                f"Could not reach any source since {self.unreachable_since:%Y-%m-%d %H:%M} "
                "UTC; see  tracker stats  for why."
            )
        return "A quiet day: nothing new since the last digest."

    @property
    def entries(self) -> list[DigestEntry]:
        return [e for section in self.sections for e in section.entries]


@dataclass(frozen=True)
class Sent:
    """What earlier digests held: story id -> when it was last sent."""

    stories: Mapping[str, datetime] = field(default_factory=dict)
    last_digest: datetime | None = None


#: The route of a ``sources.yaml`` that names none (and of every digest made before
#: routes existed).
DEFAULT_ROUTE = "digest"
