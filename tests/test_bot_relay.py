"""The relay between a runtime that outlives bots and whichever bot is logged in now."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.relay import QUEUE, BotRelay
from tracker.errors import DeliveryError


class StandInBot:
    def __init__(self, logged_in: bool = True):
        self.user = object() if logged_in else None
        self.said: list[str] = []
        self.sent: list[tuple[int | None, dict[str, Any]]] = []

    def is_closed(self) -> bool:
        return False

    async def wait_until_ready(self) -> None:
        return None

    def notifier(self) -> Any:
        bot = self

        class Notifier:
            async def announce(self, text: str) -> None:
                bot.said.append(text)

        return Notifier()

    def destination(self, channel_id: int | None = None) -> Any:
        bot = self

        class Destination:
            async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
                bot.sent.append((channel_id, payload))
                return "1"

        return Destination()


def test_without_a_logged_in_bot_a_digest_message_fails_as_an_outage():
    relay = BotRelay(42)
    relay.bot = StandInBot(logged_in=False)  # type: ignore[assignment]
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(relay.channel(42).send({"content": "x"}))
    assert caught.value.retryable and relay.channel(42).name == "discord:42"


def test_announcements_wait_for_a_bot_and_are_said_once_it_is_ready():
    relay = BotRelay(42)
    asyncio.run(relay.announce("Source blog is failing"))  # no bot at all yet
    bot = StandInBot()
    relay.bot = bot  # type: ignore[assignment]

    asyncio.run(relay.flush_when_ready())
    asyncio.run(relay.flush_when_ready())  # nothing twice

    assert bot.said == ["Source blog is failing"]
    asyncio.run(relay.channel(42).send({"content": "story"}))
    assert bot.sent == [(42, {"content": "story"})]


def test_each_route_channel_goes_through_the_bot_connected_now():
    relay = BotRelay(42)
    papers, releases = relay.channel(7), relay.channel(8)
    assert relay.channel(7) is papers and papers.name == "discord:7"
    first, second = StandInBot(), StandInBot()
    relay.bot = first  # type: ignore[assignment]
    asyncio.run(papers.send({"content": "a paper"}))
    relay.bot = second  # type: ignore[assignment]  # Discord dropped the first; a new login
    asyncio.run(releases.send({"content": "a release"}))
    assert first.sent == [(7, {"content": "a paper"})]
    assert second.sent == [(8, {"content": "a release"})]


def test_only_the_latest_announcements_are_kept_while_discord_is_away():
    relay = BotRelay(42)
    for n in range(QUEUE + 5):
        asyncio.run(relay.announce(f"note {n}"))
    bot = StandInBot()
    relay.bot = bot  # type: ignore[assignment]
    asyncio.run(relay.flush_when_ready())
    assert bot.said == [f"note {n}" for n in range(5, QUEUE + 5)]
