"""The digest as ``tracker serve`` delivers it: the runtime (SQLite outbox, stories collected
from feeds on loopback) sends each message through the relay and the real ``TrackerBot``,
that is through discord.py's own HTTP and gateway code, to the Discord on loopback in
``tests/discord_loopback.py``. What goes wrong in the middle of a digest (the gateway drops,
the session cannot be resumed, Discord accepts a message but the answer is lost, Discord is
down for ten minutes) must leave the channel with every message of the digest, once each,
in order.

The clock is the test's; discord.py's own waits between 5xx retries are shortened (``quick``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import discord.http
import pytest

from bot.client import TrackerBot
from bot.destination import SEED_REACTIONS
from bot.relay import BotRelay
from tests.conftest import RECENT, FeedServer
from tests.discord_loopback import DiscordLoopback
from tests.discord_scenario import (
    GUARD,
    READER,
    WatchedServices,
    logged_in,
    online,
    run,
    serving,
)
from tests.discord_scenario import loopback as loopback
from tests.test_serve import Clock, no_sleep
from tracker.config import load_config
from tracker.deliver.delivery import DeliveryReport, RetryPolicy
from tracker.runtime import Runtime
from tracker.runtime.digest_jobs import REDELIVER_AFTER
from tracker.settings import Settings

Sleep = Callable[[float], Awaitable[None]]

#: When the test's day starts: the world's stories were collected an hour before.
START = RECENT + timedelta(hours=1)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py waits 1, 3, 5, 7 and 9 s between its retries of a 500/502/504: the same
    waits, a thousand times shorter. Nothing else in discord.py's HTTP client changes."""
    real = asyncio.sleep

    async def sleep(seconds: float, result: Any = None) -> Any:
        return await real(seconds / 1000, result)

    shortened = types.SimpleNamespace(**{**vars(asyncio), "sleep": sleep})
    monkeypatch.setattr(discord.http, "asyncio", shortened)


def digest_half_a_day_away() -> None:
    """The next digest is half a day away: the test's steps never reach it."""
    path = Settings.from_env().sources_path
    at = (START - timedelta(hours=12)).strftime("%H:%M")
    path.write_text(path.read_text("utf-8") + f'digest: {{time: "{at}"}}\n', "utf-8")


def started(
    loopback: DiscordLoopback, clock: Clock, sleep: Sleep = no_sleep
) -> tuple[Runtime, BotRelay]:
    """A runtime whose digests go to the loopback's channel through the relay, as
    ``tracker serve`` wires them (the relay's bot is set once one is logged in).
    ``sleep`` is its wait between two tries of a message."""
    settings = Settings.from_env()
    tracker = Runtime(
        settings,
        load_config(settings.sources_path),
        now=clock,
        retry=RetryPolicy(attempts=3),
        sleep=sleep,
    )
    relay = BotRelay(int(loopback.channel_id))
    tracker.destinations = lambda route: relay.channel(int(loopback.channel_id))
    return tracker, relay


@asynccontextmanager
async def delivering(
    loopback: DiscordLoopback, clock: Clock, services: WatchedServices, sleep: Sleep = no_sleep
) -> AsyncIterator[tuple[Runtime, TrackerBot]]:
    """The runtime with the world's stories collected, and a bot logged in for it."""
    digest_half_a_day_away()
    tracker, relay = started(loopback, clock, sleep)
    try:
        await tracker.collect_all()
        async with online(loopback, services) as bot:
            relay.bot = bot
            yield tracker, bot
            await bot.destination(int(loopback.channel_id)).settle(timeout=GUARD)
    finally:
        await tracker.stop()


def outbox(digest_id: int) -> list[tuple[int, dict[str, Any], str | None]]:
    """The digest's messages as the outbox holds them: (position, payload, Discord's id)."""
    with sqlite3.connect(Settings.from_env().state_db) as db:
        rows = db.execute(
            "SELECT idx, payload, message_id FROM digest_messages WHERE digest_id = ? ORDER BY idx",
            (digest_id,),
        ).fetchall()
    return [(idx, json.loads(payload), message_id) for idx, payload, message_id in rows]


def in_channel(loopback: DiscordLoopback) -> list[dict[str, Any]]:
    """The messages the bot posted in the channel (not interaction replies), oldest first."""
    return [
        m
        for m in loopback.messages.values()
        if m["channel_id"] == loopback.channel_id
        and m["author"]["id"] == loopback.application_id
        and "webhook_id" not in m
        and "interaction_id" not in m
    ]


def shown(message: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """What a reader sees of a message's embeds (discord.py adds empty ``flags``)."""
    return [(e.get("title"), e.get("description")) for e in message.get("embeds") or []]


def assert_delivered_once_in_order(loopback: DiscordLoopback, report: DeliveryReport) -> None:
    messages = outbox(report.digest_id)
    posted = in_channel(loopback)
    assert report.complete and len(messages) >= 3
    assert [m["id"] for m in posted] == [message_id for _, _, message_id in messages]
    assert [shown(m) for m in posted] == [shown(p) for _, p, _ in messages]
    assert [m["content"] for m in posted] == [p.get("content") or "" for _, p, _ in messages]
    assert loopback.problems == []


MESSAGES = r"/channels/\d+/messages"


@pytest.mark.parametrize("session_expired", [False, True], ids=["resumed", "identified"])
def test_an_answer_lost_mid_digest_as_the_gateway_drops_loses_and_repeats_nothing(
    world: FeedServer, loopback, session_expired: bool
):
    """The drop is resumed, or (the session expired) RESUME is refused with
    INVALID_SESSION and the bot identifies as a new session."""
    services = WatchedServices()
    clock = Clock(START)
    reports: list[DeliveryReport] = []

    async def scenario() -> None:
        async with delivering(loopback, clock, services) as (tracker, _):
            # Discord accepts the second message, but the answer never reaches the bot...
            loopback.cut("POST", MESSAGES, skip=1)
            # ...and, as it is made, the gateway drops.
            loopback.refuse_resume = session_expired
            created = len(loopback.messages)

            async def drop_on_the_second_message() -> None:
                await loopback.wait_for(lambda: len(loopback.messages) >= created + 2, GUARD)
                await loopback.drop(4000)

            dropping = asyncio.create_task(drop_on_the_second_message())
            report = await tracker.digests.digest_job()
            assert report is not None
            reports.append(report)
            await asyncio.wait_for(dropping, GUARD)
            connections = 3 if session_expired else 2
            await loopback.wait_for(lambda: len(loopback.gateways) == connections, GUARD)
            await loopback.wait_for(lambda: loopback.gateways[-1].identified, GUARD, "session")
            # The session carries events: a reader's vote on a digest message counts.
            first = in_channel(loopback)[1]["id"]
            await loopback.reaction_add(first, "👍", READER)
            await services.until(lambda: services.called("feedback"), "a vote after IDENTIFY")

    run(scenario)
    (report,) = reports
    assert_delivered_once_in_order(loopback, report)
    ((kind, cut),) = loopback.faulted
    assert kind == "cut" and cut.body["nonce"] and cut.body["enforce_nonce"] is True
    # the message whose answer was lost was found in the channel, not sent again
    again = [r for r in loopback.sent("POST", MESSAGES) if r.body["nonce"] == cut.body["nonce"]]
    assert len(again) == 1
    assert len(loopback.sent("GET", rf"/channels/{loopback.channel_id}/messages")) == 1
    assert loopback.closed_with == [4000]
    ops = [[p["op"] for p in g.received if p["op"] in (2, 6)] for g in loopback.gateways]
    if session_expired:  # RESUME refused with INVALID_SESSION, then a new IDENTIFY
        assert loopback.invalid_sessions == [False]
        assert ops == [[2], [6], [2]] and loopback.session_id == "loopback-session-2"
    else:
        assert loopback.invalid_sessions == []
        assert ops == [[2], [6]] and loopback.session_id == "loopback-session-1"


def test_a_message_made_although_its_answer_was_lost_is_found_once_the_nonce_is_forgotten(
    world: FeedServer, loopback, quick
):
    """Discord made the second message but its answer was lost, and Discord forgets the
    nonce at once (as it does after a few minutes, a redelivery ten minutes later): the bot
    finds the message in the channel instead of posting it twice. Then Discord is down
    until the redelivery, which sends the rest."""
    loopback.nonce_minutes = 0
    clock = Clock(START)
    reports: list[DeliveryReport | None] = []

    def down() -> bool:
        cut = any(kind == "cut" for kind, _ in loopback.faulted)
        return cut and clock.now < START + REDELIVER_AFTER

    async def scenario() -> None:
        async with delivering(loopback, clock, WatchedServices()) as (tracker, _):
            loopback.cut("POST", MESSAGES, skip=1)
            loopback.outage("POST", MESSAGES, down)
            reports.append(await tracker.digests.digest_job())
            clock.now += REDELIVER_AFTER
            reports.append(await tracker.digests.digest_job())

    run(scenario)
    first, later = reports
    assert first is not None and first.sent == 2 and not first.complete
    assert later is not None and later.digest_id == first.digest_id
    assert_delivered_once_in_order(loopback, later)
    # the message whose answer was lost was looked for, found, and never sent again
    cut = next(r for kind, r in loopback.faulted if kind == "cut")
    nonces = [r.body["nonce"] for r in loopback.sent("POST", MESSAGES)]
    assert nonces.count(cut.body["nonce"]) == 1
    assert loopback.sent("GET", rf"/channels/{loopback.channel_id}/messages")


def test_a_resumable_invalid_session_resumes_without_a_second_identify(world: FeedServer, loopback):
    services = WatchedServices()
    reports: list[DeliveryReport] = []

    async def scenario() -> None:
        async with delivering(loopback, Clock(START), services) as (tracker, bot):
            resumed = asyncio.create_task(bot.wait_for("resumed", timeout=GUARD))
            await loopback.invalidate(resumable=True)
            await resumed
            report = await tracker.digests.digest_job()
            assert report is not None
            reports.append(report)

    run(scenario)
    assert_delivered_once_in_order(loopback, reports[0])
    ops = [[p["op"] for p in g.received if p["op"] in (2, 6)] for g in loopback.gateways]
    assert ops == [[2], [6]]
    assert loopback.session_id == "loopback-session-1"


def test_a_ten_minute_outage_mid_digest_delays_the_rest_until_discord_is_back(
    world: FeedServer, loopback, quick
):
    clock = Clock(START)
    reports: list[DeliveryReport | None] = []

    def down() -> bool:
        # From the moment the first message of the digest was accepted, for ten minutes.
        return bool(in_channel(loopback)) and clock.now < START + timedelta(minutes=10)

    async def scenario() -> None:
        async with delivering(loopback, clock, WatchedServices()) as (tracker, _):
            loopback.outage("POST", MESSAGES, down)
            reports.append(await tracker.digests.digest_job())
            # The runtime tries again REDELIVER_AFTER later (and at every digest job): the
            # test's clock stands in for the wait, in steps of half of it.
            while clock.now < START + 3 * REDELIVER_AFTER:
                clock.now += REDELIVER_AFTER / 2
                reports.append(await tracker.digests.digest_job())

    run(scenario)
    first, *later = reports
    assert first is not None and not first.complete and first.sent == 1
    assert first.error and "502" in first.error
    delivered = [r for r in later if r is not None and r.complete]
    assert len(delivered) == 1 and delivered[0].digest_id == first.digest_id
    assert_delivered_once_in_order(loopback, delivered[0])
    # Discord's 502s were retried by discord.py (five tries a send), then by the runtime,
    # and nothing was made while it was down.
    failed = [r for kind, r in loopback.faulted if kind == "outage"]
    assert failed and len(failed) % 5 == 0
    assert all(r.body["nonce"] == failed[0].body["nonce"] for r in failed)


def test_stopping_while_discord_is_slow_keeps_the_message_it_accepted_and_a_restart_sends_the_rest(
    world: FeedServer, loopback
):
    clock = Clock(START)
    reports: list[DeliveryReport | None] = []
    digest_half_a_day_away()

    async def scenario() -> None:
        async with serving(loopback):
            first, relay = started(loopback, clock)
            await first.collect_all()
            async with logged_in(loopback, WatchedServices()) as bot:
                relay.bot = bot
                loopback.slow("POST", MESSAGES, 0.3, skip=1)  # the second message takes a while
                job = asyncio.create_task(first.digests.digest_job())
                await loopback.wait_for(lambda: len(loopback.sent("POST", MESSAGES)) == 2, GUARD)
                await first.stop()  # as serve stops on SIGTERM: the runtime, then the bot
                reports.append(await job)
            # The next start: a new runtime, a new bot.
            second, relay = started(loopback, clock)
            async with logged_in(loopback, WatchedServices()) as bot:
                relay.bot = bot
                try:
                    reports.append(await second.digests.digest_job())
                finally:
                    await second.stop()

    run(scenario)
    stopped, resumed = reports
    assert stopped is not None and resumed is not None
    # the slow message was waited for and recorded, nothing after it was sent
    assert (stopped.sent, stopped.error) == (2, "stopped before sending") and stopped.left
    assert resumed.digest_id == stopped.digest_id and resumed.sent == stopped.left
    assert_delivered_once_in_order(loopback, resumed)
    assert [kind for kind, _ in loopback.faulted] == ["slow"]


REACTING = r"/channels/\d+/messages/\d+/reactions/[^/]+/@me"


def test_a_429_storm_through_a_whole_digest_waits_as_told_and_posts_each_message_once(
    world: FeedServer, loopback
):
    # More 429s on the first message than discord.py's five tries: the runtime tries again
    # after the wait Discord asked for; the seeded reactions meet twelve 429s in a row (more
    # than discord.py's five tries for one); then a global limit.
    loopback.rate_limit("POST", MESSAGES, times=7, retry_after=0.2)
    loopback.rate_limit("PUT", REACTING, times=12, retry_after=0.05)
    loopback.rate_limit("POST", MESSAGES, times=1, retry_after=0.1, is_global=True)
    waits: list[float] = []
    reports: list[DeliveryReport | None] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async def scenario() -> None:
        async with delivering(loopback, Clock(START), WatchedServices(), sleep) as (tracker, _):
            reports.append(await tracker.digests.digest_job())

    run(scenario)
    (report,) = reports
    assert report is not None
    assert_delivered_once_in_order(loopback, report)
    assert waits == [0.2]  # discord.py gave up after five 429s; the runtime waited as told
    assert len(loopback.limited) == 7 + 12 + 1
    # every refused request was tried again, no sooner than Discord said
    for limited in loopback.limited:
        later = [r for r in loopback.requests if r.at > limited.at and r.path == limited.path]
        assert limited.retry_after and later
        assert later[0].at - limited.at >= limited.retry_after * 0.95
    # each story's message shows 👍 and 👎 once each
    for message in in_channel(loopback):
        if message["embeds"]:
            seeded = [e for _, m, e in loopback.reactions if m == message["id"]]
            assert sorted(seeded) == sorted(SEED_REACTIONS)
