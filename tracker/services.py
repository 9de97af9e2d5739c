"""What the bot (and ``tracker serve``) can ask of the tracker: one small async interface.

The bot's cogs depend only on ``Services`` and the value types here, so a test
can hand them a stand-in and the cogs stay thin. ``LocalServices`` (in
``tracker.runtime.local_services``) is the real one: it runs the blocking work off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from tracker.answer.ask import Answer
from tracker.models import Digest


@dataclass(frozen=True)
class SourceHealth:
    """One followed source and how collecting it has been going."""

    name: str
    kind: str
    enabled: bool
    #: The URL or repo or query that says what the source is, for people.
    target: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    backing_off: bool = False
    #: When a backing-off source is tried again.
    retry_after: datetime | None = None


@dataclass(frozen=True)
class SearchHit:
    story_id: str
    title: str
    url: str
    kind: str
    summary: str | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Why:
    """A story's score explained: the parts add up to the score."""

    story_id: str
    title: str
    url: str
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    #: Its place among the stories ranked now (1 = first), if it is still among them.
    position: int | None = None
    total: int = 0
    feedback: dict[str, int] = field(default_factory=dict)  # {"up": n, "down": n}
    #: What the crowd made of it: "312 points and 45 comments on Hacker News" ("" if none).
    engagement: str = ""
    #: Each member and why it is in the story: "blog: same arxiv:2411.01234".
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceChange:
    """The outcome of ``/sources add`` or ``/sources remove``, for a reply."""

    name: str
    kind: str
    target: str
    #: A short note for the user (the feed's title, items seen, ...).
    note: str = ""


class Services(Protocol):
    """Everything the bot's commands call. Every method may raise ``UserError`` with a
    message fit to show the user; anything else is a bug or an outage, logged by the bot."""

    async def ask(self, question: str, since: timedelta | None, kind: str | None) -> Answer: ...

    async def digest_preview(self, since: timedelta | None, route: str | None = None) -> Digest:
        """A route's digest (the first route's when None) as it would be now, without
        recording it as sent."""
        ...

    async def digest_routes(self) -> list[str]:
        """The names of the digest routes, in the order of sources.yaml."""
        ...

    async def search(self, query: str, n: int = 5) -> list[SearchHit]: ...

    async def sources(self) -> list[SourceHealth]: ...

    async def add_source(self, url: str, name: str | None) -> SourceChange: ...

    async def remove_source(self, name: str) -> SourceChange: ...

    async def why(self, story: str) -> Why:
        """``story``: a story id, a digest message's id or link, or words of its title."""
        ...

    async def why_message(self, message_id: int) -> list[Why]:
        """The stories a digest message carries, explained (empty if it is not one)."""
        ...

    async def story_choices(self, text: str, n: int = 25) -> list[tuple[str, str]]:
        """(title, story id) of recent stories matching ``text``, for autocomplete."""
        ...

    async def feedback(self, message_id: int, user_id: int, vote: int, added: bool = True) -> bool:
        """A reader added (or removed) a vote, +1 or -1, on the story of a digest message.
        Removing a reaction withdraws the vote only if it is the reader's current one (they
        may have left the other thumb). False when the message is not a digest entry."""
        ...


class Notifier(Protocol):
    """Where one-off announcements go: the digest channel, or the log without a bot."""

    async def announce(self, text: str) -> bool | None:
        """Say ``text``; False when it could not be said (so the caller may try again)."""
        ...


@dataclass(frozen=True)
class Outgoing:
    """One message of a digest, as the destination will send it."""

    payload: dict[str, Any]
    story_ids: tuple[str, ...] = ()


class Destination(Protocol):
    """Where digests are delivered: a Discord channel, or files and the terminal."""

    #: Recorded with the digest, e.g. "discord:1234" or "file".
    name: str

    def render(self, digest: Digest) -> list[Outgoing]: ...

    async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
        """Send one message; return its id once the destination accepted it.
        Raise ``DeliveryError`` when it did not. ``key`` names the message in the outbox
        (the same at every try, different for every other message): a destination that
        can tell a repeated send from a new one uses it not to post a message twice."""
        ...
