"""Votes: 👍 and 👎 on a digest story's message reach the tracker; removing one withdraws the
vote; the bot's own seeded reactions and every other emoji are ignored."""

from __future__ import annotations

import asyncio

import discord
import pytest

from bot.cogs.feedback import FeedbackCog, vote_of
from tests.bot_standins import FakeServices, started_bot

BOT_ID = 999


def reaction(emoji: str | discord.PartialEmoji, user_id: int = 42, message_id: int = 900):
    partial = emoji if isinstance(emoji, discord.PartialEmoji) else discord.PartialEmoji(name=emoji)
    data = {
        "message_id": message_id,
        "channel_id": 55,
        "user_id": user_id,
        "guild_id": 7,
        "type": 0,
    }
    return discord.RawReactionActionEvent(data, partial, "REACTION_ADD")  # type: ignore[arg-type]


def react(
    services: FakeServices,
    *events: tuple[str, discord.RawReactionActionEvent],
    left: set[int] | None = None,
) -> None:
    """The reactions ``events`` reach the cog; after a removal the reader still shows the
    thumbs ``left`` (None: the cog is not told)."""

    async def remaining(payload: discord.RawReactionActionEvent) -> set[int] | None:
        return left

    cog = FeedbackCog(services, lambda: BOT_ID, remaining if left is not None else None)

    async def go() -> None:
        for kind, payload in events:
            handler = cog.on_raw_reaction_add if kind == "add" else cog.on_raw_reaction_remove
            await handler(payload)

    asyncio.run(go())


UP, DOWN = ("add", reaction("👍")), ("add", reaction("👎"))


@pytest.mark.parametrize(
    ("events", "left", "votes"),
    [
        pytest.param(
            [UP, ("add", reaction("👎", user_id=43)), ("remove", reaction("👍"))],
            None,
            [(900, 42, 1, True), (900, 43, -1, True), (900, 42, 1, False)],
            id="thumbs up and down are votes and a removal withdraws",
        ),
        pytest.param(
            [
                ("add", reaction("🎉")),
                ("add", reaction(discord.PartialEmoji(name="thumbsup", id=1234))),
                ("remove", reaction("❤️")),
            ],
            None,
            [],
            id="other and custom emoji are not votes",
        ),
        pytest.param(
            [("add", reaction("👍", user_id=BOT_ID)), ("add", reaction("👎", user_id=BOT_ID))],
            None,
            [],
            id="the bot's own seeded reactions are ignored",
        ),
        pytest.param(
            [UP, DOWN, ("remove", reaction("👎"))],
            {1},
            [(900, 42, 1, True), (900, 42, -1, True), (900, 42, 1, True)],
            id="taking one thumb away while the other stays makes that one the vote",
        ),
        pytest.param(
            [UP, ("remove", reaction("👍"))],
            set(),
            [(900, 42, 1, True), (900, 42, 1, False)],
            id="taking the last thumb away withdraws the vote",
        ),
        pytest.param(
            [("remove", reaction("👍🏽"))],
            {1, -1},
            [],
            id="with both thumbs still there a removal changes nothing",
        ),
    ],
)
def test_reactions_become_votes(events, left, votes):
    services = FakeServices()
    react(services, *events, left=left)
    assert services.called("feedback") == votes


def test_a_skin_toned_thumb_still_counts():
    assert vote_of(discord.PartialEmoji(name="👍🏽")) == 1
    assert vote_of(discord.PartialEmoji(name="👎🏿")) == -1


def test_a_failing_tracker_does_not_break_the_listener(caplog):
    services = FakeServices(fail=RuntimeError("database is locked"))
    react(services, ("add", reaction("👍")))
    assert "could not record a vote on message 900" in caplog.text


def test_the_bot_listens_for_raw_reaction_events():
    async def go() -> list[str]:
        bot = await started_bot(FakeServices())
        return [name for name, _ in bot.get_cog("FeedbackCog").get_listeners()]

    assert sorted(asyncio.run(go())) == ["on_raw_reaction_add", "on_raw_reaction_remove"]


def test_the_bot_reads_which_thumbs_a_reader_still_shows():
    from bot.client import TrackerBot

    class User:
        def __init__(self, id: int):
            self.id = id

    class Reaction:
        def __init__(self, emoji: str, users: list[int]):
            self.emoji = emoji
            self._users = users

        async def users(self):  # an async iterator, as discord.py's
            for u in self._users:
                yield User(u)

    class Message:
        def __init__(self) -> None:
            self.reactions = [
                Reaction("👍", [BOT_ID, 42]),
                Reaction("👎", [BOT_ID]),
                Reaction("🎉", [42]),
            ]

    class Channel:
        async def fetch_message(self, message_id: int) -> Message:
            return Message()

    bot = TrackerBot(FakeServices(), 55)
    bot.get_channel = lambda channel_id: Channel()  # type: ignore[method-assign,assignment,return-value]

    assert asyncio.run(bot._remaining_votes(reaction("👎"))) == {1}
    assert asyncio.run(bot._remaining_votes(reaction("👎", user_id=7))) == set()
