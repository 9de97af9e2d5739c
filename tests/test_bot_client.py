"""Building the bot: no connection needed, minimal intents, cogs and commands added in
setup_hook, commands registered in one server or everywhere, then tracker's start-up."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord import app_commands

from bot.client import REQUIRED_PERMISSIONS, TrackerBot, invite_url
from bot.destination import ChannelDestination, ChannelNotifier
from bot.replies import SOMETHING_WENT_WRONG
from tests.bot_standins import FakeInteraction, FakeServices, http_error, started_bot
from tracker.errors import UserError


def commands_of(bot: TrackerBot) -> dict[str, dict[str, Any]]:
    everything = [
        *bot.tree.get_commands(),
        *bot.tree.get_commands(type=discord.AppCommandType.message),
    ]
    return {c.name: c.to_dict(bot.tree) for c in everything}


def test_the_bot_is_built_without_connecting_and_asks_for_minimal_intents():
    bot = TrackerBot(FakeServices(), channel_id=55)
    intents = bot.intents
    assert intents.message_content is False
    assert intents.members is False and intents.presences is False
    assert intents.guilds and intents.guild_reactions
    assert not intents.guild_messages and not intents.dm_reactions
    assert bot.allowed_mentions is not None and bot.allowed_mentions.to_dict() == {"parse": []}


def test_destination_and_notifier_are_for_the_configured_channel():
    bot = TrackerBot(FakeServices(), channel_id=55)
    assert isinstance(bot.destination(), ChannelDestination)
    assert bot.destination().name == "discord:55"
    assert isinstance(bot.notifier(), ChannelNotifier)


def test_setup_hook_adds_the_cogs_syncs_globally_and_then_starts_the_tracker():
    started: list[TrackerBot] = []

    async def on_start(bot: TrackerBot) -> None:
        assert bot.synced == [None]  # type: ignore[attr-defined]  # commands first
        started.append(bot)

    async def go() -> TrackerBot:
        return await started_bot(FakeServices(), on_start=on_start)

    bot = asyncio.run(go())
    assert sorted(bot.cogs) == ["AskCog", "FeedbackCog", "SourcesCog", "StoriesCog"]
    assert started == [bot]


def test_a_guild_id_registers_the_commands_in_that_server_only():
    async def go() -> TrackerBot:
        return await started_bot(FakeServices(), guild_id=1234)

    bot = asyncio.run(go())
    (guild,) = bot.synced  # type: ignore[attr-defined]
    assert guild.id == 1234
    assert {c.name for c in bot.tree.get_commands(guild=guild)} >= {"ask", "sources"}


def test_a_failed_registration_is_logged_and_start_up_goes_on(caplog):
    started: list[bool] = []

    async def on_start(bot: TrackerBot) -> None:
        started.append(True)

    async def go() -> None:
        bot = TrackerBot(FakeServices(), 55, on_start=on_start)

        async def refuse(*, guild: Any = None) -> list[Any]:
            raise http_error(discord.Forbidden, 403, "Missing Access")

        bot.tree.sync = refuse  # type: ignore[method-assign]
        await bot.setup_hook()

    asyncio.run(go())
    assert started == [True]
    assert "applications.commands" in caplog.text


def test_the_command_definitions():
    bot = asyncio.run(started_bot(FakeServices()))
    defined = commands_of(bot)
    assert sorted(defined) == ["Why this story?", "ask", "digest", "search", "sources", "why"]

    ask = defined["ask"]
    assert [(o["name"], o["required"]) for o in ask["options"]] == [
        ("question", True),
        ("since", False),
        ("kind", False),
    ]
    kinds = next(o for o in ask["options"] if o["name"] == "kind")["choices"]
    assert [c["value"] for c in kinds] == ["paper", "post", "release"]
    assert all(c["description"] for c in defined.values() if "description" in c)

    sources = defined["sources"]
    assert sources["dm_permission"] is False
    sub = {o["name"]: o for o in sources["options"]}
    assert sorted(sub) == ["add", "list", "remove"]
    assert [o["name"] for o in sub["add"]["options"]] == ["url", "name"]
    assert sub["remove"]["options"][0]["autocomplete"] is True

    story = defined["why"]["options"][0]
    assert (story["name"], story["required"], story["autocomplete"]) == ("story", True, True)
    assert defined["Why this story?"]["type"] == discord.AppCommandType.message.value


def test_the_invite_asks_for_exactly_what_the_bot_uses():
    assert REQUIRED_PERMISSIONS.value == 85056
    url = invite_url(123)
    assert "client_id=123" in url and "permissions=85056" in url
    assert "scope=bot+applications.commands" in url


def test_an_error_after_deferring_is_answered_with_a_follow_up():
    bot = TrackerBot(FakeServices(), 55)
    interaction = FakeInteraction()

    async def go() -> None:
        await interaction.response.defer(thinking=True)
        error = app_commands.CommandInvokeError(_any_command(), RuntimeError("boom"))
        await bot.tree.on_error(interaction, error)  # type: ignore[arg-type]

    asyncio.run(go())
    assert [(s.via, s.content, s.ephemeral) for s in interaction.sent] == [
        ("followup", SOMETHING_WENT_WRONG, True)
    ]


def test_a_user_error_before_any_response_is_the_initial_private_reply():
    bot = TrackerBot(FakeServices(), 55)
    interaction = FakeInteraction()
    error = app_commands.CommandInvokeError(_any_command(), UserError("No story matches “xyz”."))
    asyncio.run(bot.tree.on_error(interaction, error))  # type: ignore[arg-type]
    assert interaction.first[0] == "send_message"
    assert [(s.via, s.content, s.ephemeral) for s in interaction.sent] == [
        ("response", "No story matches “xyz”.", True)
    ]


def _any_command() -> app_commands.Command[Any, ..., Any]:
    async def noop(interaction: discord.Interaction) -> None:
        pass

    return app_commands.Command(name="noop", description="nothing", callback=noop)
