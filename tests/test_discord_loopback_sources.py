"""/sources list and /sources remove through the real ``TrackerBot``, discord.py's own gateway
and HTTP code, and the Discord on loopback in ``tests/discord_loopback.py``: the list shown
privately, packed into messages within Discord's limits, with nothing in it able to ping;
remove refused privately without Manage Server, announced in the channel with it, its
names suggested as the member types, and an unknown name answered with the tracker's
refusal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import discord

from bot.client import TrackerBot
from bot.replies import NEEDS_MANAGE_SERVER
from tests.bot_standins import FakeServices
from tests.discord_limits import CONTENT
from tests.discord_loopback import DiscordLoopback
from tests.discord_scenario import (
    EPHEMERAL,
    GUARD,
    VIEW_AND_SEND,
    follow_ups,
    online,
    run,
)
from tests.discord_scenario import loopback as loopback
from tracker.services import SourceHealth

T = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
UNIX = int(T.timestamp())
ZWSP = "\u200b"
SUPPRESS_EMBEDS = discord.MessageFlags(suppress_embeds=True).value
MANAGE = VIEW_AND_SEND | discord.Permissions(manage_guild=True).value
#: discord.AllowedMentions.none() as it goes over the wire: no one, no role, no @everyone.
NO_PINGS: dict[str, list[str]] = {"parse": []}


def followed() -> list[SourceHealth]:
    return [
        SourceHealth("papers", "arxiv", True, "cat:cs.CL", last_success=T),
        SourceHealth(
            "@everyone news",
            "feed",
            True,
            "https://example.org/feed.xml",
            last_success=T,
            last_error="503 from <@1234567890> and @here",
            last_error_at=T,
            consecutive_failures=2,
            backing_off=True,
            retry_after=T,
        ),
        SourceHealth("Old blog", "feed", False, "https://example.org/old.xml"),
    ]


@dataclass(frozen=True)
class Answer:
    """One message the member got in answer to an interaction."""

    content: str
    #: Whether only the member sees it, by Discord's rule (see ``answers``).
    private: bool
    #: What the bot sent for it: an initial response's ``data``, or a follow-up's body.
    body: dict[str, Any]


def answers(loopback: DiscordLoopback, sent: dict[str, Any]) -> list[Answer]:
    """The messages answering the interaction ``sent``, in order, after checking it got
    exactly one initial response.

    Visibility follows Discord's documented rule for Create Followup Message: ``flags`` 64
    makes a follow-up ephemeral *except* for the first follow-up after a deferral (type 5),
    which replaces the "thinking…" message: its flags are ignored and it is as private as
    the deferral was. (The loopback stores messages with that rule applied; here it is
    worked out from the requests, which keep the flags the bot asked for.)"""
    token = sent["token"]
    initial = [c for t, c in loopback.callbacks if t == token]
    assert len(initial) == 1, f"{len(initial)} initial responses: {initial}"
    (callback,) = initial
    data = callback.get("data") or {}
    shown: list[Answer] = []
    if callback["type"] == 4:
        shown.append(
            Answer(data.get("content") or "", bool(data.get("flags", 0) & EPHEMERAL), data)
        )
    else:
        assert callback["type"] == 5, callback
    deferred_privately = bool(data.get("flags", 0) & EPHEMERAL)
    refused = {id(r) for r in loopback.limited}  # a 429 shows nothing: its retry does
    mine = [
        r for r in follow_ups(loopback) if r.path.endswith(f"/{token}") and id(r) not in refused
    ]
    for n, post in enumerate(mine):
        asked = bool(post.body.get("flags", 0) & EPHEMERAL)
        private = deferred_privately if callback["type"] == 5 and n == 0 else asked
        shown.append(Answer(post.body.get("content") or "", private, post.body))
    return shown


async def completed(bot: TrackerBot, use: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Use a command and wait until its callback has returned without error (discord.py's
    ``app_command_completion``, after every message it sent was answered). A command that
    fails instead fails the test at once, with the error the bot's tree handled."""
    failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    handler = bot.tree.on_error

    async def observed(interaction: discord.Interaction[Any], error: Any) -> None:
        try:
            await handler(interaction, error)
        finally:
            if not failed.done():
                failed.set_result(error)

    bot.tree.on_error = observed  # type: ignore[method-assign]
    # listening from here: wait_for registers its listener when called
    done: asyncio.Future[Any] = asyncio.ensure_future(bot.wait_for("app_command_completion"))
    try:
        sent = await use
        either: set[asyncio.Future[Any]] = {done, failed}
        await asyncio.wait(either, timeout=GUARD, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            raise AssertionError(f"the command failed: {failed.result()!r}")
        if not done.done():
            raise AssertionError("timed out waiting for the command to complete")
        return sent
    finally:
        done.cancel()
        bot.tree.on_error = handler  # type: ignore[method-assign]


async def until_answered(loopback: DiscordLoopback, sent: dict[str, Any]) -> None:
    """Wait for a first message answering ``sent``: an initial response with one, or a
    follow-up (whichever way the bot answers, at once or after deferring)."""
    token = sent["token"]

    def answered() -> bool:
        at_once = any(t == token and c.get("type") == 4 for t, c in loopback.callbacks)
        return at_once or any(r.path.endswith(f"/{token}") for r in follow_ups(loopback))

    await loopback.wait_for(answered, GUARD, "an answer")


async def until_called_back(loopback: DiscordLoopback, sent: dict[str, Any]) -> None:
    """Wait for the initial response to ``sent`` (an autocomplete's is its only one)."""
    token = sent["token"]
    await loopback.wait_for(
        lambda: any(t == token for t, _ in loopback.callbacks), GUARD, "the response"
    )


# --- /sources list ----------------------------------------------------------------------------


def test_sources_list_is_deferred_privately_then_shows_every_source_without_pings(
    loopback,
):
    services = FakeServices(followed=followed())
    got: list[Answer] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            sent = await completed(
                bot, loopback.interaction("sources", subcommand="list", permissions=VIEW_AND_SEND)
            )
            got.extend(answers(loopback, sent))

    run(scenario)
    assert services.calls == [("sources", ())]
    ((_, callback),) = loopback.callbacks
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL
    (answer,) = got
    assert answer.private
    assert answer.body["flags"] & EPHEMERAL and answer.body["flags"] & SUPPRESS_EMBEDS
    assert answer.body["allowed_mentions"] == NO_PINGS
    lines = answer.content.splitlines()
    # sorted by name whatever the case; names escaped so none reads as a mention
    assert [line.split("**")[1] for line in lines] == [
        f"@{ZWSP}everyone news",
        "Old blog",
        "papers",
    ]
    assert lines[0].startswith("⚠️ ") and f"<{ZWSP}@1234567890" in lines[0]
    assert f"@{ZWSP}here" in lines[0] and f"next try <t:{UNIX}:R>" in lines[0]
    assert lines[1] == "⏸️ **Old blog** (feed): paused"
    assert lines[2] == f"✅ **papers** (arxiv): last collected <t:{UNIX}:R>"
    for raw in ("@everyone", "@here", "<@1234567890>"):
        assert raw not in answer.content
    assert loopback.problems == []


def test_sources_list_with_nothing_followed_says_how_to_add_one_privately(loopback):
    got: list[Answer] = []

    async def scenario() -> None:
        async with online(loopback) as bot:
            sent = await completed(bot, loopback.interaction("sources", subcommand="list"))
            got.extend(answers(loopback, sent))

    run(scenario)
    (answer,) = got
    assert answer.private and answer.body["flags"] & EPHEMERAL
    assert answer.content == "No sources are followed yet. Add one with `/sources add`."
    assert answer.body["allowed_mentions"] == NO_PINGS
    assert loopback.problems == []


def test_a_long_sources_list_is_packed_into_private_follow_ups_within_discords_limit(
    loopback,
):
    many = [
        SourceHealth(
            f"source-{n:02}",
            "feed",
            True,
            f"https://example.org/{n}.xml",
            last_error="x" * 300,
            last_error_at=T,
            consecutive_failures=1,
        )
        for n in range(40)
    ]
    services = FakeServices(followed=many[::-1])  # the bot sorts them
    got: list[Answer] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            sent = await completed(bot, loopback.interaction("sources", subcommand="list"))
            got.extend(answers(loopback, sent))

    run(scenario)
    assert len(got) >= 5  # 40 lines of over 250 characters: five messages or more
    assert len(follow_ups(loopback)) == len(got)  # all of them follow-ups of the one deferral
    for answer in got:
        assert answer.private and answer.body["flags"] & EPHEMERAL
        assert answer.body["allowed_mentions"] == NO_PINGS
        assert 0 < len(answer.content) <= CONTENT
        # a line never straddles two messages
        assert all(line.startswith("⚠️ **source-") for line in answer.content.splitlines())
    names = [line.split("**")[1] for a in got for line in a.content.splitlines()]
    assert names == [f"source-{n:02}" for n in range(40)]  # each once, in order
    assert loopback.problems == []


def test_a_rate_limited_sources_list_follow_up_is_retried_and_posted_once_in_order(
    loopback,
):
    many = [
        SourceHealth(
            f"source-{n:02}", "feed", True, "u", last_error="x" * 300, consecutive_failures=1
        )
        for n in range(12)
    ]
    following = rf"/webhooks/{loopback.application_id}/[^/]+"
    loopback.rate_limit("POST", following, times=2)
    got: list[Answer] = []

    async def scenario() -> None:
        async with online(loopback, FakeServices(followed=many)) as bot:
            sent = await completed(bot, loopback.interaction("sources", subcommand="list"))
            got.extend(answers(loopback, sent))

    run(scenario)
    posts = loopback.sent("POST", following)
    assert loopback.limited == posts[:2] and posts[0].body == posts[1].body == posts[2].body
    stored = [m["content"] for m in loopback.messages.values()]
    assert stored == [p.body["content"] for p in posts[2:]] and len(stored) >= 2
    names = [line.split("**")[1] for text in stored for line in text.splitlines()]
    assert names == [f"source-{n:02}" for n in range(12)]
    assert [a.content for a in got] == stored
    assert all(a.private and a.body["flags"] & EPHEMERAL for a in got)
    assert loopback.problems == []


# --- /sources remove --------------------------------------------------------------------------


def test_sources_remove_without_manage_server_is_refused_privately(loopback):
    services = FakeServices(followed=followed())
    assert not VIEW_AND_SEND & discord.Permissions(manage_guild=True).value
    got: list[Answer] = []

    async def scenario() -> None:
        async with online(loopback, services):
            sent = await loopback.interaction(
                "sources", {"name": "papers"}, subcommand="remove", permissions=VIEW_AND_SEND
            )
            await until_answered(loopback, sent)
            got.extend(answers(loopback, sent))

    run(scenario)
    ((_, callback),) = loopback.callbacks
    assert callback["type"] == 4  # refused at once: no deferral, nothing public
    (answer,) = got
    assert answer.private and answer.body["flags"] & EPHEMERAL
    assert answer.content == NEEDS_MANAGE_SERVER
    assert answer.body["allowed_mentions"] == NO_PINGS
    assert services.called("remove_source") == []
    assert follow_ups(loopback) == []
    assert loopback.problems == []


def test_sources_remove_with_manage_server_removes_it_once_and_says_so_in_the_channel(
    loopback,
):
    services = FakeServices(followed=followed())
    got: list[Answer] = []

    async def scenario() -> None:
        async with online(loopback, services) as bot:
            sent = await completed(
                bot,
                loopback.interaction(
                    "sources", {"name": "papers"}, subcommand="remove", permissions=MANAGE
                ),
            )
            got.extend(answers(loopback, sent))

    run(scenario)
    assert services.calls == [("remove_source", ("papers",))]
    ((_, callback),) = loopback.callbacks
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL
    change = "Stopped following **papers** (feed): <https://example.org/feed.xml>\nremoved"
    done, announced = got
    assert done.private and done.content == f"Done. {change}"
    assert not announced.private and announced.content.startswith(f"{change}\n(by <@")
    assert all(a.body["allowed_mentions"] == NO_PINGS for a in got)
    assert loopback.problems == []


def test_sources_remove_of_an_unknown_name_is_refused_to_the_asker_only(loopback):
    """The refusal comes after a deferral, and Discord shows the first follow-up exactly as
    the deferral was, whatever flags it asks for: the deferral is private, so it is."""
    services = FakeServices(followed=followed())
    got: list[Answer] = []

    async def scenario() -> None:
        async with online(loopback, services):
            sent = await loopback.interaction(
                "sources", {"name": "nope"}, subcommand="remove", permissions=MANAGE
            )
            await until_answered(loopback, sent)
            got.extend(answers(loopback, sent))

    run(scenario)
    assert services.calls == [("remove_source", ("nope",))]
    ((_, callback),) = loopback.callbacks
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL
    (answer,) = got
    assert answer.content == "No source is called “nope”; /sources list shows their names."
    assert answer.private and answer.body["allowed_mentions"] == NO_PINGS
    assert all(m["flags"] & EPHEMERAL for m in loopback.messages.values())  # nothing public
    assert loopback.problems == []


def test_sources_remove_suggests_the_followed_names_as_the_member_types(loopback):
    too_long = "feed-2" + "x" * 95  # 101 characters: Discord takes no choice that long
    names = [f"feed-{n:02}" for n in range(30)] + ["papers", too_long]
    services = FakeServices(
        followed=[SourceHealth(n, "feed", True, "https://example.org/f") for n in names[::-1]]
    )

    async def scenario() -> None:
        async with online(loopback, services):
            for typed in ("FEED", "feed-2"):
                sent = await loopback.interaction(
                    "sources",
                    {"name": typed},
                    subcommand="remove",
                    permissions=MANAGE,
                    focused="name",
                )
                await until_called_back(loopback, sent)

    run(scenario)
    assert services.calls == [("sources", ()), ("sources", ())]  # only looked: none removed
    assert [c["type"] for _, c in loopback.callbacks] == [8, 8]  # autocomplete choices
    many, few = (c["data"]["choices"] for _, c in loopback.callbacks)
    # matched whatever the case; at most 25, as Discord takes no more
    assert many == [{"name": n, "value": n} for n in names[:25]]
    assert few == [{"name": n, "value": n} for n in names[20:30]]  # the long name left out
    assert loopback.problems == []
