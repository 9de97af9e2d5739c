"""The digest channel of whichever bot is connected now, for a runtime that outlives bots.

``tracker serve`` keeps collecting while Discord is unreachable, and logs in
again with a new bot when it can. The runtime is given this relay as its
destination and notifier: while no bot is logged in, a digest message fails
as an outage (so delivery retries it later) and an announcement goes to the
log.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.client import TrackerBot
from bot.destination import render_messages
from tracker.digest import Digest
from tracker.errors import DeliveryError
from tracker.services import Outgoing

log = logging.getLogger("tracker.bot.relay")


class BotRelay:
    def __init__(self, channel_id: int):
        self.name = f"discord:{channel_id}"
        self.bot: TrackerBot | None = None

    def render(self, digest: Digest) -> list[Outgoing]:
        return render_messages(digest)

    async def send(self, payload: dict[str, Any]) -> str:
        bot = self._connected()
        if bot is None:
            raise DeliveryError("not connected to Discord yet", retryable=True)
        return await bot.destination().send(payload)

    async def announce(self, text: str) -> None:
        bot = self._connected()
        if bot is None:
            log.warning("announcement not sent (not connected to Discord): %s", text[:200])
            return
        await bot.notifier().announce(text)

    def _connected(self) -> TrackerBot | None:
        bot = self.bot
        if bot is None or bot.user is None or bot.is_closed():
            return None
        return bot
