"""The real ``TrackerBot``, through discord.py's own gateway and HTTP code, against the Discord
on loopback in ``tests/discord_loopback.py``: logging in, registering its commands within
Discord's limits, refusing a bad token without logging it, posting a digest, answering /ask,
/why, /digest, /search and /sources add, counting readers' votes, and resuming its session
after the gateway drops it."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import discord
import pytest

from bot.client import TrackerBot
from bot.destination import SEED_REACTIONS, render_messages
from bot.replies import NEEDS_MANAGE_SERVER
from tests.bot_standins import FakeServices, digest
from tests.discord_limits import command_problems, message_problems
from tests.discord_loopback import DiscordLoopback
from tests.discord_scenario import (
    EPHEMERAL,
    GUARD,
    READER,
    TOKEN,
    VIEW_AND_SEND,
    WatchedServices,
    follow_ups,
    online,
    posted_digest_message,
    run,
    serving,
)
from tests.discord_scenario import loopback as loopback
from tests.discord_scenario import new_loopback as new_loopback
from tracker.config import load_config
from tracker.deliver.discord import render_discord
from tracker.errors import ConfigError
from tracker.runtime.serve import serve
from tracker.services import SearchHit
from tracker.settings import Settings


async def until_follow_ups(loopback: DiscordLoopback, n: int) -> None:
    await loopback.wait_for(lambda: len(follow_ups(loopback)) >= n, GUARD, f"{n} follow-ups")


def test_the_bot_logs_in_and_registers_commands_within_discords_limits(loopback):
    async def scenario() -> None:
        async with online(loopback) as bot:
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


def test_a_guild_id_registers_the_commands_in_that_server(loopback):
    async def scenario() -> None:
        async with online(loopback, guild_id=int(loopback.guild_id)):
            pass

    run(scenario)
    app, guild = loopback.application_id, loopback.guild_id
    (sync,) = loopback.sent("PUT", rf"/applications/{app}/guilds/{guild}/commands")
    assert "ask" in {c["name"] for c in sync.body}
    assert loopback.problems == []


def test_a_token_refused_at_identify_stops_the_bot_and_stays_out_of_the_logs(new_loopback, caplog):
    caplog.set_level(logging.DEBUG)
    loopback = new_loopback(identify_token="a-token-issued-since")
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
    new_loopback, write_sources, monkeypatch, capsys
):
    # A token revoked between login and IDENTIFY: retrying would never help, so serve
    # stops with the setup error (exit 2) rather than logging in again for ever.
    loopback = new_loopback(identify_token="a-token-issued-since")
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


def test_a_token_refused_by_the_api_is_a_login_failure(new_loopback, caplog):
    caplog.set_level(logging.DEBUG)
    loopback = new_loopback("the-real-token")

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


def test_a_digest_message_is_posted_without_pings_and_seeded_with_votes(loopback):
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback) as bot:
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


def test_a_repeated_send_is_one_message_and_the_same_story_in_another_digest_is_another(
    loopback,
):
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback) as bot:
            destination = bot.destination(int(loopback.channel_id))
            payload = render_messages(digest())[0].payload
            ids.append(await destination.send(payload, key="1/0"))
            ids.append(await destination.send(payload, key="1/0"))  # sent again: a retry
            ids.append(await destination.send(payload, key="2/0"))  # another route's digest
            await destination.settle(timeout=GUARD)

    run(scenario)
    first, again, other = ids
    assert first == again != other
    assert list(loopback.messages) == [first, other]
    posts = loopback.sent("POST", rf"/channels/{loopback.channel_id}/messages")
    nonces = [r.body["nonce"] for r in posts]
    assert nonces[0] == nonces[1] != nonces[2] and all(len(n) <= 25 for n in nonces)
    assert loopback.problems == []


def test_ask_is_deferred_once_then_answered_by_a_follow_up(loopback):
    services = FakeServices()

    async def scenario() -> None:
        async with online(loopback, services):
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


# --- votes ------------------------------------------------------------------------------------


def test_a_readers_thumb_is_a_vote_and_the_bots_own_reactions_are_not(loopback):
    services = WatchedServices()
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            message = await posted_digest_message(loopback, bot)
            ids.append(message)
            own = loopback.application_id
            # The bot's own add and remove come first; each is dropped before any await, so
            # once the reader's vote is recorded they have long been handled.
            await loopback.reaction_add(message, "👍", own)
            await loopback.reaction_remove(message, "👎", own)
            await loopback.reaction_add(message, "👍🏽", READER)
            await services.until(lambda: services.called("feedback"), "the vote")

    run(scenario)
    (message,) = ids
    assert services.called("feedback") == [(int(message), int(READER), 1, True)]
    # the bot's own removal was not even looked into
    assert loopback.sent("GET", rf"/channels/{loopback.channel_id}/messages/{message}") == []
    assert loopback.problems == []


def test_taking_the_thumb_away_withdraws_the_vote_after_reading_what_is_left(
    loopback,
):
    services = WatchedServices()
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            message = await posted_digest_message(loopback, bot)
            ids.append(message)
            await loopback.reaction_add(message, "👍", READER)
            await services.until(lambda: services.called("feedback"), "the vote")
            await loopback.reaction_remove(message, "👍", READER)
            await services.until(lambda: len(services.called("feedback")) == 2, "the withdrawal")

    run(scenario)
    (message,) = ids
    assert services.called("feedback") == [
        (int(message), int(READER), 1, True),
        (int(message), int(READER), 1, False),
    ]
    channel = loopback.channel_id
    # it read the message, then who shows each thumb (only the bot's seeds are left)
    assert len(loopback.sent("GET", rf"/channels/{channel}/messages/{message}")) == 1
    looked = loopback.sent("GET", rf"/channels/{channel}/messages/{message}/reactions/[^/]+")
    assert sorted(r.path.rsplit("/", 1)[1] for r in looked) == sorted(SEED_REACTIONS)
    assert loopback.problems == []


def test_taking_one_thumb_away_leaves_the_other_as_the_vote(loopback):
    services = WatchedServices()
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            message = await posted_digest_message(loopback, bot)
            ids.append(message)
            await loopback.reaction_add(message, "👍", READER)
            await services.until(lambda: len(services.called("feedback")) == 1, "👍")
            await loopback.reaction_add(message, "👎", READER)
            await services.until(lambda: len(services.called("feedback")) == 2, "👎")
            await loopback.reaction_remove(message, "👎", READER)
            await services.until(lambda: len(services.called("feedback")) == 3, "what is left")

    run(scenario)
    m, r = int(ids[0]), int(READER)
    assert services.called("feedback") == [(m, r, 1, True), (m, r, -1, True), (m, r, 1, True)]
    assert loopback.problems == []


# --- commands that read stories -----------------------------------------------------------


def _one_deferred_ephemeral_response(loopback: DiscordLoopback, sent: dict[str, Any]) -> None:
    ((token, callback),) = loopback.callbacks
    assert token == sent["token"]
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL


def test_why_is_deferred_privately_then_explains_the_score(loopback):
    services = FakeServices()

    async def scenario() -> None:
        async with online(loopback, services):
            sent = await loopback.interaction("why", {"story": "faster decoding"})
            await until_follow_ups(loopback, 1)
            _one_deferred_ephemeral_response(loopback, sent)

    run(scenario)
    assert services.called("why") == [("faster decoding",)]
    (follow_up,) = follow_ups(loopback)
    assert follow_up.body["flags"] & EPHEMERAL
    content = follow_up.body["content"]
    assert "Faster Decoding" in content and "Ranked **3** of 40" in content
    assert "= score **0.820**" in content and "👍 2 · 👎 1" in content
    assert follow_up.body["allowed_mentions"]["parse"] == []
    assert loopback.problems == []


def test_why_this_story_on_a_digest_message_is_deferred_privately_then_explains_it(
    loopback,
):
    services = FakeServices()
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            message = await posted_digest_message(loopback, bot)
            ids.append(message)
            services.by_message[int(message)] = [services.explained]
            sent = await loopback.interaction("Why this story?", target=message)
            await until_follow_ups(loopback, 1)
            _one_deferred_ephemeral_response(loopback, sent)

    run(scenario)
    assert ("Why this story?", 3) in {(c["name"], c["type"]) for c in loopback.commands[None]}
    assert services.called("why_message") == [(int(ids[0]),)]
    (follow_up,) = follow_ups(loopback)
    assert follow_up.body["flags"] & EPHEMERAL
    assert "Ranked **3** of 40" in follow_up.body["content"]
    assert loopback.problems == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"since": "2d"}, (timedelta(days=2), None)),
        ({"since": "2d", "route": "digest"}, (timedelta(days=2), "digest")),
    ],
)
def test_digest_is_deferred_privately_then_previewed_in_follow_ups(loopback, options, expected):
    services = FakeServices()
    rendered = [m.to_payload() for m in render_discord(services.preview)]

    async def scenario() -> None:
        async with online(loopback, services):
            sent = await loopback.interaction("digest", options)
            await until_follow_ups(loopback, len(rendered))
            _one_deferred_ephemeral_response(loopback, sent)

    run(scenario)
    assert services.called("digest_preview") == [expected]
    posted = follow_ups(loopback)
    assert len(posted) == len(rendered) >= 1
    for post, payload in zip(posted, rendered, strict=True):
        assert post.body["flags"] & EPHEMERAL
        assert [e.get("title") for e in post.body["embeds"]] == [
            e.get("title") for e in payload["embeds"]
        ]
    assert loopback.problems == []


def test_search_is_deferred_privately_then_lists_the_hits(loopback):
    hit = SearchHit("s1", "Faster Decoding", "https://arxiv.org/abs/2411.01234", "paper", "Drafts.")
    services = FakeServices(hits=[hit])

    async def scenario() -> None:
        async with online(loopback, services):
            sent = await loopback.interaction("search", {"query": "decoding"})
            await until_follow_ups(loopback, 1)
            _one_deferred_ephemeral_response(loopback, sent)

    run(scenario)
    assert services.called("search") == [("decoding", 5)]
    (follow_up,) = follow_ups(loopback)
    assert follow_up.body["flags"] & EPHEMERAL
    content = follow_up.body["content"]
    assert "**1.**" in content and "Faster Decoding" in content
    assert "https://arxiv.org/abs/2411.01234" in content and "> Drafts." in content
    assert loopback.problems == []


# --- changing the sources -------------------------------------------------------------------


def test_sources_add_without_manage_server_is_refused_privately(loopback):
    services = FakeServices()
    assert not VIEW_AND_SEND & 0x20

    async def scenario() -> None:
        async with online(loopback, services):
            await loopback.interaction(
                "sources",
                {"url": "https://example.org/blog"},
                subcommand="add",
                permissions=VIEW_AND_SEND,
            )
            await loopback.wait_for(lambda: loopback.callbacks, GUARD, "the refusal")

    run(scenario)
    ((_, callback),) = loopback.callbacks
    assert callback["type"] == 4  # answered at once, no deferral
    assert callback["data"]["flags"] & EPHEMERAL
    assert callback["data"]["content"] == NEEDS_MANAGE_SERVER
    assert services.called("add_source") == []
    assert follow_ups(loopback) == []
    assert loopback.problems == []


def test_sources_add_with_manage_server_adds_it_once_and_announces_it_in_the_open(
    loopback,
):
    services = FakeServices()
    manage = VIEW_AND_SEND | discord.Permissions(manage_guild=True).value

    async def scenario() -> None:
        async with online(loopback, services):
            await loopback.interaction(
                "sources",
                {"url": "https://example.org/blog"},
                subcommand="add",
                permissions=manage,
                user_id=READER,
            )
            await until_follow_ups(loopback, 2)

    run(scenario)
    assert services.called("add_source") == [("https://example.org/blog", None)]
    ((_, callback),) = loopback.callbacks
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL
    # the first follow-up is as private as the deferral; the announcement is for everyone
    done, announced = (loopback.messages[m] for m in list(loopback.messages)[-2:])
    assert done["flags"] & EPHEMERAL and done["content"].startswith("Done. Now following")
    assert not announced["flags"] & EPHEMERAL
    assert announced["content"].startswith("Now following **blog** (feed)")
    assert announced["content"].endswith(f"(by <@{READER}>)")
    assert loopback.problems == []


# --- the gateway drops the bot --------------------------------------------------------------


def test_a_dropped_gateway_is_resumed_once_and_the_digest_still_posts_once(loopback):
    services = WatchedServices()
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            # listening before the drop: RESUMED cannot come before the bot reconnects
            resumed = asyncio.create_task(bot.wait_for("resumed", timeout=GUARD))
            await loopback.drop(4000)
            await resumed
            ids.append(await posted_digest_message(loopback, bot))
            # the resumed connection carries events: a vote still arrives
            await loopback.reaction_add(ids[0], "👍", READER)
            await services.until(lambda: services.called("feedback"), "a vote after RESUME")

    run(scenario)
    assert loopback.closed_with == [4000]
    first, second = loopback.gateways  # exactly one extra connection
    assert [p["op"] for p in second.received if p["op"] in (2, 6)] == [6]  # no new IDENTIFY
    resume = next(p for p in second.received if p["op"] == 6)["d"]
    assert resume["session_id"] == loopback.session_id
    assert resume["seq"] == first.sequence
    assert resume["token"] == TOKEN
    assert second.sequence > first.sequence  # RESUMED and the vote went on from there
    (message,) = ids
    assert len(loopback.sent("POST", rf"/channels/{loopback.channel_id}/messages")) == 1
    assert [m for _, m, _ in loopback.reactions] == [message] * len(SEED_REACTIONS)
    assert services.called("feedback") == [(int(message), int(READER), 1, True)]
    assert loopback.problems == []


# --- Discord rate limits the bot ------------------------------------------------------------


def _rate_limit_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What discord.py logged on taking a 429 as a rate limit to wait out (not an error)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "discord.http" and "rate limit" in r.getMessage()
    ]


def test_a_digest_message_rate_limited_twice_is_retried_and_posted_once(loopback, caplog):
    caplog.set_level(logging.WARNING, "discord.http")
    posting = rf"/channels/{loopback.channel_id}/messages"
    loopback.rate_limit("POST", posting, times=2)
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback) as bot:
            ids.append(await posted_digest_message(loopback, bot))

    run(scenario)
    posts = loopback.sent("POST", posting)
    assert len(posts) == 3 and loopback.limited == posts[:2]  # two 429s, then the message
    assert posts[0].body == posts[1].body == posts[2].body  # the same message each time
    said = _rate_limit_warnings(caplog)
    assert len(said) == 2 and all("Retrying in 0.05 seconds" in s for s in said)
    assert list(loopback.messages) == ids  # stored once, and send named it
    assert [m for _, m, _ in loopback.reactions] == ids * len(SEED_REACTIONS)
    assert loopback.problems == []


def test_seed_reactions_rate_limited_twice_each_are_retried_and_added_once(loopback):
    channel = loopback.channel_id
    for emoji in SEED_REACTIONS:
        loopback.rate_limit("PUT", rf"/channels/{channel}/messages/\d+/reactions/{emoji}/@me", 2)
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback) as bot:
            # posted_digest_message checks the seeds were each added once, in order
            ids.append(await posted_digest_message(loopback, bot))

    run(scenario)
    (message,) = ids
    puts = loopback.sent("PUT", rf"/channels/{channel}/messages/{message}/reactions/[^/]+/@me")
    emojis = [r.path.split("/")[-2] for r in puts]
    assert emojis == [e for e in SEED_REACTIONS for _ in range(3)]  # 429, 429, added; per emoji
    assert loopback.limited == [r for n, r in enumerate(puts) if n % 3 != 2]
    assert loopback.reactions == [(channel, message, e) for e in SEED_REACTIONS]
    assert len(loopback.sent("POST", rf"/channels/{channel}/messages")) == 1
    assert loopback.problems == []


def test_a_global_rate_limit_on_a_digest_message_still_posts_it_once(loopback, caplog):
    caplog.set_level(logging.WARNING, "discord.http")
    posting = rf"/channels/{loopback.channel_id}/messages"
    loopback.rate_limit("POST", posting, is_global=True)
    ids: list[str] = []

    async def scenario() -> None:
        async with online(loopback) as bot:
            ids.append(await posted_digest_message(loopback, bot))

    run(scenario)
    posts = loopback.sent("POST", posting)
    assert len(posts) == 2 and loopback.limited == posts[:1]
    assert any("Global rate limit has been hit" in s for s in _rate_limit_warnings(caplog))
    assert list(loopback.messages) == ids
    assert [m for _, m, _ in loopback.reactions] == ids * len(SEED_REACTIONS)
    assert loopback.problems == []
