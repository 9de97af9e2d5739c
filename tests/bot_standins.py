"""Stand-ins for the Discord side of the bot: an interaction that remembers what was sent
and refuses a second response like Discord does, a channel, canned services, and a way
to run a command the way the command tree does (checks, then the callback, errors to
the tree's handler). Nothing here touches the network."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import discord
from discord import app_commands

from bot.client import TrackerBot
from tracker.answer.ask import Answer, Citation
from tracker.errors import UserError
from tracker.models import Digest, DigestEntry, DigestSection, ItemKind
from tracker.services import SearchHit, SourceChange, SourceHealth, Why

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
_ids = itertools.count(1000)


@dataclass
class Sent:
    """One message the bot sent: how (``response`` or ``followup``) and with what."""

    via: str
    #: The text ("" when the message has only embeds).
    content: str
    kwargs: dict[str, Any]

    @property
    def ephemeral(self) -> bool:
        return bool(self.kwargs.get("ephemeral"))


class FakeResponse:
    def __init__(self, interaction: FakeInteraction):
        self._interaction = interaction
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def is_done(self) -> bool:
        return bool(self.calls)

    def _once(self, kind: str, kwargs: dict[str, Any]) -> None:
        if self.calls:  # what Discord (and discord.py) do on a second initial response
            raise discord.InteractionResponded(self._interaction)  # type: ignore[arg-type]
        self.calls.append((kind, kwargs))

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        self._once("defer", {"ephemeral": ephemeral, "thinking": thinking})

    async def send_message(self, content: str | None = None, **kwargs: Any) -> None:
        self._once("send_message", {"content": content, **kwargs})
        self._interaction.sent.append(Sent("response", content or "", kwargs))

    async def autocomplete(self, choices: list[Any]) -> None:
        self._once("autocomplete", {"choices": choices})


class FakeFollowup:
    def __init__(self, interaction: FakeInteraction):
        self._interaction = interaction

    async def send(self, content: Any = discord.utils.MISSING, **kwargs: Any) -> None:
        if not self._interaction.response.is_done():
            raise AssertionError("a follow-up before the initial response: Discord rejects it")
        text = "" if content is discord.utils.MISSING else content
        self._interaction.sent.append(Sent("followup", text, kwargs))


class FakeInteraction:
    def __init__(
        self,
        user_id: int = 42,
        permissions: discord.Permissions | None = None,
        guild_id: int | None = 7,
    ):
        self.user = SimpleNamespace(id=user_id, mention=f"<@{user_id}>")
        self.permissions = permissions if permissions is not None else discord.Permissions.none()
        self.guild = SimpleNamespace(id=guild_id) if guild_id else None
        self.guild_id = guild_id
        self.channel = SimpleNamespace(id=55)
        self.command: Any = None
        self.sent: list[Sent] = []
        self.response = FakeResponse(self)
        self.followup = FakeFollowup(self)

    @property
    def first(self) -> tuple[str, dict[str, Any]]:
        """The one initial response (a defer or a message)."""
        assert len(self.response.calls) == 1, self.response.calls
        return self.response.calls[0]

    @property
    def texts(self) -> list[str]:
        return [s.content for s in self.sent]


def admin() -> discord.Permissions:
    return discord.Permissions(manage_guild=True)


async def invoke(
    command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    interaction: FakeInteraction,
    tree: app_commands.CommandTree[Any] | None = None,
    *args: Any,
    **options: Any,
) -> None:
    """Run ``command`` as the command tree would: its checks, then its callback; an error
    goes to the tree's ``on_error`` (or is raised when no tree is given)."""
    interaction.command = command
    try:
        if isinstance(command, app_commands.ContextMenu):
            await command._invoke(interaction, *args)  # type: ignore[arg-type]
        else:
            await command._invoke_with_namespace(
                interaction,  # type: ignore[arg-type]
                SimpleNamespace(**options),  # type: ignore[arg-type]
            )
    except app_commands.AppCommandError as error:
        if tree is None:
            raise
        await tree.on_error(interaction, error)  # type: ignore[arg-type]


# --- canned services ------------------------------------------------------------------------


def entry(n: int, title: str | None = None, kind: ItemKind = ItemKind.PAPER) -> DigestEntry:
    return DigestEntry(
        story_id=f"s{n}",
        kind=kind,
        title=title or f"Story number {n}",
        summary=f"What story {n} is about, in a sentence or two.",
        sources=("arxiv",),
        links=(f"https://example.org/{n}",),
        score=1.0 / n,
    )


def digest(*entries: DigestEntry) -> Digest:
    entries = entries or (entry(1), entry(2), entry(3, kind=ItemKind.RELEASE))
    sections = []
    for kind, name in ((ItemKind.PAPER, "Papers"), (ItemKind.RELEASE, "Releases")):
        mine = tuple(e for e in entries if e.kind is kind)
        if mine:
            sections.append(DigestSection(name, mine))
    return Digest(created=NOW, since=NOW - timedelta(days=1), sections=tuple(sections))


@dataclass
class FakeServices:
    """``tracker.services.Services`` with canned answers; records every call. Set ``fail``
    to an exception to make every call raise it."""

    answer: Answer = field(
        default_factory=lambda: Answer(
            text="Draft models propose tokens that the target verifies [1].",
            mode="extractive",
            citations=(Citation(1, "Faster Decoding", "https://arxiv.org/abs/2411.01234", "s1"),),
        )
    )
    hits: list[SearchHit] = field(default_factory=list)
    followed: list[SourceHealth] = field(default_factory=list)
    explained: Why = field(
        default_factory=lambda: Why(
            story_id="s1",
            title="Faster Decoding",
            url="https://arxiv.org/abs/2411.01234",
            score=0.82,
            parts={"relevance": 0.5, "recency": 0.2, "source_weight": 0.12},
            position=3,
            total=40,
            feedback={"up": 2, "down": 1},
        )
    )
    by_message: dict[int, list[Why]] = field(default_factory=dict)
    choices: list[tuple[str, str]] = field(default_factory=list)
    preview: Digest = field(default_factory=digest)
    routes: tuple[str, ...] = ("digest",)
    fail: BaseException | None = None
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.fail is not None:
            raise self.fail

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]

    async def ask(self, question: str, since: timedelta | None, kind: str | None) -> Answer:
        self._call("ask", question, since, kind)
        return self.answer

    async def digest_preview(self, since: timedelta | None, route: str | None = None) -> Digest:
        self._call("digest_preview", since, route)
        return self.preview

    async def digest_routes(self) -> list[str]:
        self._call("digest_routes")
        return list(self.routes)

    async def search(self, query: str, n: int = 5) -> list[SearchHit]:
        self._call("search", query, n)
        return self.hits[:n]

    async def sources(self) -> list[SourceHealth]:
        self._call("sources")
        return self.followed

    async def add_source(self, url: str, name: str | None) -> SourceChange:
        self._call("add_source", url, name)
        return SourceChange(name or "blog", "feed", url, "“A Blog”, 12 entries now")

    async def remove_source(self, name: str) -> SourceChange:
        self._call("remove_source", name)
        if name not in {s.name for s in self.followed}:
            raise UserError(f"No source is called “{name}”; /sources list shows their names.")
        return SourceChange(name, "feed", "https://example.org/feed.xml", "removed")

    async def why(self, story: str) -> Why:
        self._call("why", story)
        return self.explained

    async def why_message(self, message_id: int) -> list[Why]:
        self._call("why_message", message_id)
        return self.by_message.get(message_id, [])

    async def story_choices(self, text: str, n: int = 25) -> list[tuple[str, str]]:
        self._call("story_choices", text, n)
        return self.choices[:n]

    async def feedback(self, message_id: int, user_id: int, vote: int, added: bool = True) -> bool:
        self._call("feedback", message_id, user_id, vote, added)
        return True


# --- the bot and the channel ----------------------------------------------------------------


async def started_bot(services: FakeServices, channel_id: int | None = 55, **kwargs: Any):
    """A ``TrackerBot`` after ``setup_hook``, with command registration kept off the network."""
    bot = TrackerBot(services, channel_id, **kwargs)
    synced: list[Any] = []

    async def sync(*, guild: Any = None) -> list[Any]:
        synced.append(guild)
        return []

    bot.tree.sync = sync  # type: ignore[method-assign]
    bot.synced = synced  # type: ignore[attr-defined]
    await bot.setup_hook()
    return bot


@dataclass
class FakeHTTPResponse:
    """Enough of aiohttp's response for ``discord.HTTPException`` to describe itself."""

    status: int
    reason: str = "Error"


def http_error(
    cls: type[discord.HTTPException], status: int, text: str = "", code: int = 0
) -> Exception:
    return cls(FakeHTTPResponse(status, "Error"), {"code": code, "message": text})  # type: ignore[arg-type]


class FakeMessage:
    def __init__(self, fail_reactions: Exception | None = None):
        self.id = next(_ids)
        self.reactions: list[str] = []
        self.fail_reactions = fail_reactions

    async def add_reaction(self, emoji: str) -> None:
        if self.fail_reactions is not None:
            raise self.fail_reactions
        self.reactions.append(emoji)


class FakeChannel:
    def __init__(self, name: str = "ai-digest", fail: Exception | None = None):
        self.name = name
        self.fail = fail
        self.sent: list[dict[str, Any]] = []
        self.messages: list[FakeMessage] = []
        self.fail_reactions: Exception | None = None

    async def send(self, **kwargs: Any) -> FakeMessage:
        if self.fail is not None:
            raise self.fail
        self.sent.append(kwargs)
        message = FakeMessage(self.fail_reactions)
        self.messages.append(message)
        return message


class FakeClient:
    """What the destination asks of the bot: a channel from the cache, or fetched."""

    def __init__(
        self, channel: Any = None, cached: bool = True, fetch_error: Exception | None = None
    ):
        self.channel = channel
        self.cached = cached
        self.fetch_error = fetch_error
        self.fetches = 0

    def get_channel(self, id: int, /) -> Any:
        return self.channel if self.cached else None

    async def fetch_channel(self, channel_id: int, /) -> Any:
        self.fetches += 1
        await asyncio.sleep(0)
        if self.fetch_error is not None:
            raise self.fetch_error
        return self.channel
