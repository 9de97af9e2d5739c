"""The real ``TrackerBot``, through discord.py's own gateway and HTTP code, against the Discord
on loopback in ``tests/discord_loopback.py``: logging in, registering its commands within
Discord's limits, refusing a bad token without logging it, posting a digest, answering /ask."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.client import TrackerBot
from bot.destination import SEED_REACTIONS, render_messages
from tests.bot_standins import FakeServices, digest
from tests.discord_loopback import DiscordLoopback, command_problems, message_problems
from tracker.config import load_config
from tracker.errors import ConfigError
from tracker.serve import serve
from tracker.settings import Settings

TOKEN = "LOOPBACK.bot-token.sekrit-3f9a"
#: Only a guard against a hung test: every wait ends on an event well before it.
GUARD = 15.0


@pytest.fixture
def point_discord_py_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[DiscordLoopback], None]:
    """discord.py's REST base and default gateway, pointed at a loopback server."""

    def point(loopback: DiscordLoopback) -> None:
        monkeypatch.setattr(Route, "BASE", loopback.api_base)
        monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(loopback.gateway_url))

    return point


@asynccontextmanager
async def serving(loopback: DiscordLoopback) -> AsyncIterator[DiscordLoopback]:
    await loopback.start()
    try:
        yield loopback
    finally:
        await loopback.close()


@asynccontextmanager
async def logged_in(
    loopback: DiscordLoopback, services: FakeServices, **kwargs: Any
) -> AsyncIterator[TrackerBot]:
    """The bot, started against ``loopback`` and ready, with the guild in its cache."""
    bot = TrackerBot(services, int(loopback.channel_id), **kwargs)
    # discord.py waits this long after the last GUILD_CREATE before READY counts (2 s by
    # default); the guild is awaited below in any case, so a short wait loses nothing.
    bot._connection.guild_ready_timeout = 0.05
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


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_the_bot_logs_in_and_registers_commands_within_discords_limits(point_discord_py_at):
    loopback = DiscordLoopback(TOKEN)
    point_discord_py_at(loopback)

    async def scenario() -> None:
        async with serving(loopback), logged_in(loopback, FakeServices()) as bot:
            assert bot.user is not None and str(bot.user.id) == loopback.application_id
            assert [str(g.id) for g in bot.guilds] == [loopback.guild_id]
            channel = bot.get_channel(int(loopback.channel_id))
            assert isinstance(channel, discord.TextChannel)
            me = channel.guild.me
            assert channel.permissions_for(me).send_messages
            assert channel.permissions_for(me).add_reactions

    run(scenario)
    gateway = loopback.gateways[0]
    assert gateway.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    identify = next(p for p in gateway.received if p["op"] == 2)["d"]
    assert identify["intents"] == discord.Intents(guilds=True, guild_reactions=True).value
    (sync,) = loopback.sent("PUT", rf"/applications/{loopback.application_id}/commands")
    names = {c["name"] for c in sync.body}
    assert {"ask", "sources"} <= names
    assert {c["name"] for c in loopback.commands[None]} == names
    assert all(r.authorized for r in loopback.requests)
    assert loopback.problems == []


def test_a_guild_id_registers_the_commands_in_that_server(point_discord_py_at):
    loopback = DiscordLoopback(TOKEN)
    point_discord_py_at(loopback)

    async def scenario() -> None:
        async with (
            serving(loopback),
            logged_in(loopback, FakeServices(), guild_id=int(loopback.guild_id)),
        ):
            pass

    run(scenario)
    app, guild = loopback.application_id, loopback.guild_id
    (sync,) = loopback.sent("PUT", rf"/applications/{app}/guilds/{guild}/commands")
    assert "ask" in {c["name"] for c in sync.body}
    assert loopback.problems == []


def test_a_token_refused_at_identify_stops_the_bot_and_stays_out_of_the_logs(
    point_discord_py_at, caplog
):
    caplog.set_level(logging.DEBUG)
    loopback = DiscordLoopback(TOKEN, identify_token="a-token-issued-since")
    point_discord_py_at(loopback)
    raised: list[BaseException] = []

    async def scenario() -> None:
        async with serving(loopback):
            bot = TrackerBot(FakeServices(), int(loopback.channel_id))
            try:
                await asyncio.wait_for(bot.start(TOKEN), GUARD)
            except discord.ConnectionClosed as exc:
                raised.append(exc)
            assert bot.is_closed()

    run(scenario)
    # discord.py does not turn 4004 into LoginFailure: it closes and raises ConnectionClosed.
    (closed,) = raised
    assert isinstance(closed, discord.ConnectionClosed) and closed.code == 4004
    assert loopback.closed_with == [4004]
    assert len(loopback.gateways) == 1  # 4004 is final: no reconnect, no resume
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in (record.exc_text or "")


def test_serve_stops_with_the_fix_when_discord_refuses_the_token_at_identify(
    point_discord_py_at, write_sources, monkeypatch, capsys
):
    # A token revoked between login and IDENTIFY: retrying would never help, so serve
    # stops with the setup error (exit 2) rather than logging in again for ever.
    loopback = DiscordLoopback(TOKEN, identify_token="a-token-issued-since")
    point_discord_py_at(loopback)
    path = write_sources("sources: []\n")
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("DISCORD_CHANNEL_ID", loopback.channel_id)
    settings = Settings.from_env()

    async def scenario() -> None:
        async with serving(loopback):
            with pytest.raises(ConfigError) as caught:
                await asyncio.wait_for(serve(settings, load_config(path)), GUARD * 4)
            said = str(caught.value)
            assert "DISCORD_TOKEN" in said and "Reset Token" in said and TOKEN not in said

    run(scenario)
    assert loopback.closed_with == [4004] and len(loopback.gateways) == 1
    assert TOKEN not in capsys.readouterr().err


def test_a_token_refused_by_the_api_is_a_login_failure(point_discord_py_at, caplog):
    caplog.set_level(logging.DEBUG)
    loopback = DiscordLoopback("the-real-token")
    point_discord_py_at(loopback)

    async def scenario() -> None:
        async with serving(loopback):
            bot = TrackerBot(FakeServices(), int(loopback.channel_id))
            with pytest.raises(discord.LoginFailure):
                await asyncio.wait_for(bot.start(TOKEN), GUARD)
            await bot.close()

    run(scenario)
    assert [r.path for r in loopback.requests] == ["/users/@me"]
    assert loopback.gateways == []
    for record in caplog.records:
        assert TOKEN not in record.getMessage()


def test_a_digest_message_is_posted_without_pings_and_seeded_with_votes(point_discord_py_at):
    loopback = DiscordLoopback(TOKEN)
    point_discord_py_at(loopback)
    ids: list[str] = []

    async def scenario() -> None:
        async with serving(loopback), logged_in(loopback, FakeServices()) as bot:
            destination = bot.destination(int(loopback.channel_id))
            for outgoing in render_messages(digest()):
                ids.append(await destination.send(outgoing.payload))
            await destination.settle(timeout=GUARD)

    run(scenario)
    posts = loopback.sent("POST", rf"/channels/{loopback.channel_id}/messages")
    assert len(posts) == len(ids) == 3
    assert ids == [m for m in loopback.messages]
    for post in posts:
        assert post.body["allowed_mentions"]["parse"] == []
        assert len(post.body["embeds"]) == 1
    assert loopback.reactions == [
        (loopback.channel_id, m, emoji) for m in ids for emoji in SEED_REACTIONS
    ]
    assert loopback.problems == []


def test_ask_is_deferred_once_then_answered_by_a_follow_up(point_discord_py_at):
    loopback = DiscordLoopback(TOKEN)
    point_discord_py_at(loopback)
    services = FakeServices()

    async def scenario() -> None:
        async with serving(loopback), logged_in(loopback, services):
            sent = await loopback.interaction(
                "ask", {"question": "How does speculative decoding work?"}
            )
            await loopback.wait_for(
                lambda: loopback.sent("POST", rf"/webhooks/{loopback.application_id}/.+"),
                GUARD,
                "the follow-up",
            )
            assert [t for t, _ in loopback.callbacks] == [sent["token"]]

    run(scenario)
    assert services.called("ask") == [("How does speculative decoding work?", None, None)]
    ((_, callback),) = loopback.callbacks
    assert callback["type"] == 5  # deferred: the answer may take seconds
    (follow_up,) = loopback.sent("POST", rf"/webhooks/{loopback.application_id}/.+")
    assert follow_up.query.get("wait") in ("1", "true")  # the message comes back
    assert follow_up.body["flags"] & discord.MessageFlags(suppress_embeds=True).value
    assert "> How does speculative decoding work?" in follow_up.body["content"]
    assert services.answer.text.split(" [1]")[0] in follow_up.body["content"]
    assert follow_up.body["allowed_mentions"]["parse"] == []
    assert loopback.problems == []


def test_the_loopback_refuses_what_discord_documents_it_refuses():
    """The limits above are checked for real: a test passing says the bot kept to them."""
    long_name = {"name": "Ask-Me", "description": "x" * 101, "type": 1}
    many = {
        "name": "many",
        "description": "d",
        "options": [{"name": f"o{n}", "description": "d", "type": 3} for n in range(26)],
    }
    assert len(command_problems([long_name])) == 2
    assert len(command_problems([many])) == 1
    assert command_problems([{"name": "Why this story?", "type": 3}]) == []
    assert message_problems({"content": "x" * 2001})
    assert message_problems({"content": "", "embeds": []})
    assert message_problems({"embeds": [{"title": "t"}] * 11})
    assert message_problems({"embeds": [{"description": "x" * 4000}] * 2})  # 6,000 in all
    assert message_problems({"content": "fine", "embeds": [{"title": "t"}]}) == []
