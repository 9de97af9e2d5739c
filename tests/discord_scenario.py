"""The set-up shared by the tests that run the real ``TrackerBot``, through discord.py's own
gateway and HTTP code, against the Discord on loopback in ``tests/discord_loopback.py``.

A test takes the ``loopback`` fixture (a ``DiscordLoopback`` that discord.py is already
pointed at; ``new_loopback(...)`` makes one with other arguments), sets it up, and runs its
scenario with the bot logged in::

    def test_x(loopback):
        services = FakeServices()

        async def scenario() -> None:
            async with online(loopback, services) as bot:
                ...

        run(scenario)
        # ...then the asserts, on what the loopback and the services saw

A test module uses the fixtures by importing them under their own names
(``from tests.discord_scenario import loopback as loopback``), as they are not in conftest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from bot.client import TrackerBot
from bot.destination import SEED_REACTIONS, render_messages
from tests.bot_standins import FakeServices, digest
from tests.discord_loopback import DiscordLoopback

TOKEN = "LOOPBACK.bot-token.sekrit-3f9a"
#: Only a guard against a hung test: every wait ends on an event well before it.
GUARD = 15.0
READER = "1100000000000000001"  # lower than every loopback id: sorts first among reactors
EPHEMERAL = discord.MessageFlags(ephemeral=True).value
VIEW_AND_SEND = discord.Permissions(view_channel=True, send_messages=True).value


def _pointed_at(point: Callable[[Any], None], token: str, **kwargs: Any) -> DiscordLoopback:
    loopback = DiscordLoopback(token, **kwargs)
    point(loopback)
    return loopback


@pytest.fixture
def loopback(point_discord_py_at: Callable[[Any], None]) -> DiscordLoopback:
    """A ``DiscordLoopback(TOKEN)`` that discord.py is pointed at, not started yet."""
    return _pointed_at(point_discord_py_at, TOKEN)


@pytest.fixture
def new_loopback(point_discord_py_at: Callable[[Any], None]) -> Callable[..., DiscordLoopback]:
    """Makes a ``DiscordLoopback(token, **kwargs)`` (``token`` is ``TOKEN`` unless given)
    and points discord.py at it. One per test: discord.py goes to the last one made."""

    def make(token: str = TOKEN, **kwargs: Any) -> DiscordLoopback:
        return _pointed_at(point_discord_py_at, token, **kwargs)

    return make


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


@asynccontextmanager
async def serving(loopback: DiscordLoopback) -> AsyncIterator[DiscordLoopback]:
    await loopback.start()
    try:
        yield loopback
    finally:
        await loopback.close()


@asynccontextmanager
async def logged_in(
    loopback: DiscordLoopback,
    services: FakeServices,
    *,
    heartbeat_timeout: float = 60.0,
    **kwargs: Any,
) -> AsyncIterator[TrackerBot]:
    """The bot, started against ``loopback`` and ready, with the guild in its cache.
    ``heartbeat_timeout``: how long discord.py waits on a silent gateway (its default)."""
    bot = TrackerBot(services, int(loopback.channel_id), **kwargs)
    # discord.py waits this long after the last GUILD_CREATE before READY counts (2 s by
    # default); the guild is awaited below in any case, so a short wait loses nothing.
    bot._connection.guild_ready_timeout = 0.05
    bot._connection.heartbeat_timeout = heartbeat_timeout
    task = asyncio.create_task(bot.start(TOKEN))
    try:
        await asyncio.wait_for(_ready(bot, task), GUARD)
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, GUARD)


async def _ready(bot: TrackerBot, task: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(bot.wait_until_ready())
    await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # raises what start() raised
        raise AssertionError("bot.start returned before the bot was ready")
    if not bot.guilds:  # GUILD_CREATE came after discord.py stopped waiting for it
        await bot.wait_for("guild_join")


@asynccontextmanager
async def online(
    loopback: DiscordLoopback, services: FakeServices | None = None, **kwargs: Any
) -> AsyncIterator[TrackerBot]:
    """``loopback`` started and the bot logged in to it with ``services`` (a new
    ``FakeServices()`` unless given) and ``logged_in``'s other arguments; on leaving, the
    bot is closed, then the loopback."""
    if services is None:
        services = FakeServices()
    async with serving(loopback), logged_in(loopback, services, **kwargs) as bot:
        yield bot


@dataclass
class WatchedServices(FakeServices):
    """``FakeServices`` a test can wait on: a vote reaches the services without any request
    to the loopback, so the wait is on the call itself."""

    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def _call(self, name: str, *args: Any) -> None:
        try:
            super()._call(name, *args)
        finally:
            self.changed.set()

    async def until(self, ready: Callable[[], Any], what: str) -> None:
        async def check() -> None:
            while not ready():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(check(), GUARD)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None


async def posted_digest_message(loopback: DiscordLoopback, bot: TrackerBot) -> str:
    """One digest story posted to the channel and seeded with 👍 and 👎 by the bot."""
    destination = bot.destination(int(loopback.channel_id))
    message_id = await destination.send(render_messages(digest())[0].payload)
    await destination.settle(timeout=GUARD)
    assert [e for _, m, e in loopback.reactions if m == message_id] == list(SEED_REACTIONS)
    return str(message_id)


def follow_ups(loopback: DiscordLoopback) -> list[Any]:
    """The follow-up messages the bot posted to interactions, oldest first."""
    return loopback.sent("POST", rf"/webhooks/{loopback.application_id}/.+")
