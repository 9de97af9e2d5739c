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
        self.sent: list[dict[str, Any]] = []

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

    def destination(self) -> Any:
        bot = self

        class Destination:
            async def send(self, payload: dict[str, Any]) -> str:
                bot.sent.append(payload)
                return "1"

        return Destination()


def test_without_a_logged_in_bot_a_digest_message_fails_as_an_outage():
    relay = BotRelay(42)
    relay.bot = StandInBot(logged_in=False)  # type: ignore[assignment]
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(relay.send({"content": "x"}))
    assert caught.value.retryable and relay.name == "discord:42"


def test_announcements_wait_for_a_bot_and_are_said_once_it_is_ready():
    relay = BotRelay(42)
    asyncio.run(relay.announce("Source blog is failing"))  # no bot at all yet
    bot = StandInBot()
    relay.bot = bot  # type: ignore[assignment]

    asyncio.run(relay.flush_when_ready())
    asyncio.run(relay.flush_when_ready())  # nothing twice

    assert bot.said == ["Source blog is failing"]
    asyncio.run(relay.send({"content": "story"}))
    assert bot.sent == [{"content": "story"}]


def test_only_the_latest_announcements_are_kept_while_discord_is_away():
    relay = BotRelay(42)
    for n in range(QUEUE + 5):
        asyncio.run(relay.announce(f"note {n}"))
    bot = StandInBot()
    relay.bot = bot  # type: ignore[assignment]
    asyncio.run(relay.flush_when_ready())
    assert bot.said == [f"note {n}" for n in range(5, QUEUE + 5)]
