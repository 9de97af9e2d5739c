"""The digest channels of whichever bot is connected now, for a runtime that outlives bots.

``tracker serve`` keeps collecting while Discord is unreachable, and logs in
again with a new bot when it can. The runtime is given this relay's channels
as its destinations (one per channel a digest route names) and the relay as
its notifier: while no bot is logged in, a digest message fails as an outage
(so delivery retries it later) and an announcement is kept until one is.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.client import TrackerBot
from bot.destination import render_messages
from tracker.errors import DeliveryError
from tracker.models import Digest
from tracker.services import Outgoing

log = logging.getLogger("tracker.bot.relay")

#: Announcements kept while no bot is logged in (the oldest are dropped beyond this).
QUEUE = 20


class RelayChannel:
    """One channel's digests, sent through whichever bot is connected when they go out."""

    def __init__(self, relay: BotRelay, channel_id: int):
        self.relay = relay
        self.channel_id = channel_id
        self.name = f"discord:{channel_id}"

    def render(self, digest: Digest) -> list[Outgoing]:
        return render_messages(digest)

    async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
        bot = self.relay._connected()
        if bot is None:
            raise DeliveryError("not connected to Discord yet", retryable=True)
        return await bot.destination(self.channel_id).send(payload, key=key)


class BotRelay:
    """The announcements channel (``channel_id``, the digest's default channel) and a
    ``RelayChannel`` for each channel a route names."""

    def __init__(self, channel_id: int | None):
        self.channel_id = channel_id
        self.bot: TrackerBot | None = None
        self._queued: list[str] = []
        self._channels: dict[int, RelayChannel] = {}

    def channel(self, channel_id: int) -> RelayChannel:
        """The destination for digests in ``channel_id``."""
        key = channel_id
        if key not in self._channels:
            self._channels[key] = RelayChannel(self, key)
        return self._channels[key]

    async def announce(self, text: str) -> bool:
        """Said in the channel now, or as soon as a bot is logged in: an announcement is
        made once, so it is kept rather than dropped while Discord is out of reach."""
        bot = self._connected()
        if bot is None:
            self._queued = [*self._queued, text][-QUEUE:]
            log.info("announcement kept until Discord is reachable: %s", text[:200])
            return True  # it will be said
        return await bot.notifier().announce(text)

    async def flush_when_ready(self) -> None:
        """Send the kept announcements once the current bot is connected."""
        bot = self.bot
        if bot is None:
            return
        await bot.wait_until_ready()
        queued, self._queued = self._queued, []
        for text in queued:
            await self.announce(text)

    def _connected(self) -> TrackerBot | None:
        bot = self.bot
        if bot is None or bot.user is None or bot.is_closed():
            return None
        return bot
