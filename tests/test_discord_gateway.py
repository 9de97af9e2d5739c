"""The bot's gateway connection through discord.py's own code against the Discord on
loopback: heartbeats carry the sequence and are acknowledged, a connection that goes silent
is given up and resumed, RECONNECT and a HEARTBEAT request are obeyed, and after each the
bot still hears events and posts a digest message once."""

from __future__ import annotations

import asyncio

from tests.discord_loopback import DiscordLoopback
from tests.discord_scenario import (
    GUARD,
    READER,
    WatchedServices,
    online,
    posted_digest_message,
    run,
)
from tests.discord_scenario import loopback as loopback
from tests.discord_scenario import new_loopback as new_loopback

#: Heartbeats every 50 ms (Discord: about 41 s), so a test sees several.
BEAT_MS = 50


def resume_ops(loopback: DiscordLoopback) -> list[list[int]]:
    """Per connection, the IDENTIFY (2) and RESUME (6) the bot sent on it."""
    return [[p["op"] for p in g.received if p["op"] in (2, 6)] for g in loopback.gateways]


async def a_vote_still_counts(loopback: DiscordLoopback, bot, services: WatchedServices) -> str:
    message = await posted_digest_message(loopback, bot)
    await loopback.reaction_add(message, "👍", READER)
    await services.until(lambda: services.called("feedback"), "the vote")
    return message


def test_heartbeats_carry_the_last_sequence_and_a_silent_gateway_is_left_and_resumed(
    new_loopback,
):
    loopback = new_loopback(heartbeat_interval=BEAT_MS)
    services = WatchedServices()

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            first = loopback.gateways[0]
            await loopback.wait_for(lambda: len(first.heartbeats) >= 3, GUARD, "heartbeats")
            # The connection stays open but Discord says nothing more, not even ACKs. The
            # bot gives up a silent connection after heartbeat_timeout (60 s): a second here,
            # set only now so that a slow machine cannot make it give up any earlier.
            assert bot.ws is not None and bot.ws._keep_alive is not None
            bot.ws._keep_alive.heartbeat_timeout = 1.0
            resumed = asyncio.create_task(bot.wait_for("resumed", timeout=GUARD))
            loopback.silence()
            await resumed
            await a_vote_still_counts(loopback, bot, services)

    run(scenario)
    first, second = loopback.gateways
    # discord.py beats once on HELLO, before any event; READY and GUILD_CREATE were events
    # 1 and 2, and the heartbeats since say so
    assert first.heartbeats[0] is None and first.heartbeats[-1] == first.sequence == 2
    assert set(first.heartbeats) <= {None, 1, 2}
    assert resume_ops(loopback) == [[2], [6]]
    resume = next(p for p in second.received if p["op"] == 6)["d"]
    assert resume["seq"] == first.sequence and resume["session_id"] == "loopback-session-1"
    assert len([m for m in loopback.messages.values() if m["embeds"]]) == 1
    assert loopback.problems == []


def test_reconnect_is_obeyed_with_a_resume_and_a_heartbeat_request_is_answered_at_once(
    loopback,
):
    # the loopback beats at Discord's own interval: no heartbeat comes unasked
    services = WatchedServices()

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            await loopback.ask_heartbeat()
            first = loopback.gateways[0]
            await loopback.wait_for(lambda: first.heartbeats, GUARD, "the heartbeat asked for")
            resumed = asyncio.create_task(bot.wait_for("resumed", timeout=GUARD))
            await loopback.reconnect()
            await resumed
            await a_vote_still_counts(loopback, bot, services)

    run(scenario)
    first, second = loopback.gateways
    assert first.heartbeats == [None, 2]  # the one on HELLO, and the one asked for
    assert resume_ops(loopback) == [[2], [6]]
    assert second.sequence > first.sequence
    assert len([m for m in loopback.messages.values() if m["embeds"]]) == 1
    assert loopback.problems == []
