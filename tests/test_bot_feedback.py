"""Votes: 👍 and 👎 on a digest story's message reach the tracker; removing one withdraws the
vote; the bot's own seeded reactions and every other emoji are ignored."""

from __future__ import annotations

import asyncio

import discord

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


def react(services: FakeServices, *events: tuple[str, discord.RawReactionActionEvent]) -> None:
    cog = FeedbackCog(services, lambda: BOT_ID)

    async def go() -> None:
        for kind, payload in events:
            handler = cog.on_raw_reaction_add if kind == "add" else cog.on_raw_reaction_remove
            await handler(payload)

    asyncio.run(go())


def test_thumbs_up_and_down_are_votes_and_removal_withdraws():
    services = FakeServices()
    react(
        services,
        ("add", reaction("👍")),
        ("add", reaction("👎", user_id=43)),
        ("remove", reaction("👍")),
    )
    assert services.called("feedback") == [
        (900, 42, 1, True),
        (900, 43, -1, True),
        (900, 42, 1, False),
    ]


def test_other_emoji_and_custom_emoji_are_not_votes():
    services = FakeServices()
    react(
        services,
        ("add", reaction("🎉")),
        ("add", reaction(discord.PartialEmoji(name="thumbsup", id=1234))),
        ("remove", reaction("❤️")),
    )
    assert services.called("feedback") == []


def test_a_skin_toned_thumb_still_counts():
    assert vote_of(discord.PartialEmoji(name="👍🏽")) == 1
    assert vote_of(discord.PartialEmoji(name="👎🏿")) == -1


def test_the_bots_own_seeded_reactions_are_ignored():
    services = FakeServices()
    react(
        services, ("add", reaction("👍", user_id=BOT_ID)), ("add", reaction("👎", user_id=BOT_ID))
    )
    assert services.called("feedback") == []


def test_a_failing_tracker_does_not_break_the_listener(caplog):
    services = FakeServices(fail=RuntimeError("database is locked"))
    react(services, ("add", reaction("👍")))
    assert "could not record a vote on message 900" in caplog.text


def test_the_bot_listens_for_raw_reaction_events():
    async def go() -> list[str]:
        bot = await started_bot(FakeServices())
        return [name for name, _ in bot.get_cog("FeedbackCog").get_listeners()]

    assert sorted(asyncio.run(go())) == ["on_raw_reaction_add", "on_raw_reaction_remove"]


def react_showing(
    services: FakeServices,
    left: set[int] | None,
    *events: tuple[str, discord.RawReactionActionEvent],
) -> None:
    """As ``react``, with the reader still showing the thumbs ``left`` after a removal."""

    async def remaining(payload: discord.RawReactionActionEvent) -> set[int] | None:
        return left

    cog = FeedbackCog(services, lambda: BOT_ID, remaining)

    async def go() -> None:
        for kind, payload in events:
            handler = cog.on_raw_reaction_add if kind == "add" else cog.on_raw_reaction_remove
            await handler(payload)

    asyncio.run(go())


def test_taking_away_one_thumb_while_the_other_stays_makes_that_one_the_vote():
    services = FakeServices()
    react_showing(
        services, {1}, ("add", reaction("👍")), ("add", reaction("👎")), ("remove", reaction("👎"))
    )
    assert services.called("feedback")[-1] == (900, 42, 1, True)


def test_taking_away_the_last_thumb_withdraws_the_vote():
    services = FakeServices()
    react_showing(services, set(), ("add", reaction("👍")), ("remove", reaction("👍")))
    assert services.called("feedback")[-1] == (900, 42, 1, False)


def test_with_both_thumbs_still_there_a_removal_changes_nothing():
    services = FakeServices()
    react_showing(services, {1, -1}, ("remove", reaction("👍🏽")))
    assert services.called("feedback") == []


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
