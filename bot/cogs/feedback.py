"""Readers' votes: 👍 and 👎 on a digest story's message become feedback for ranking.

Raw reaction events arrive for every message the bot can see, cached or not,
and need only the guild-reactions intent (no message content). The tracker
decides whether the message is a digest story; the bot ignores its own seeded
reactions and every other emoji.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord
from discord.ext import commands

from tracker.services import Services

log = logging.getLogger("tracker.bot.feedback")

VOTES = {"👍": 1, "👎": -1}
_SKIN_TONES = "".join(chr(c) for c in range(0x1F3FB, 0x1F400))


def vote_of(emoji: discord.PartialEmoji) -> int | None:
    """+1 for 👍, -1 for 👎 (in any skin tone), None for every other emoji."""
    if emoji.id is not None or not emoji.name:  # a server's custom emoji
        return None
    return VOTES.get(emoji.name.rstrip(_SKIN_TONES + "\ufe0f"))


class FeedbackCog(commands.Cog):
    def __init__(self, services: Services, own_id: Callable[[], int | None]):
        self.services = services
        #: The bot's own user id once logged in: its seeded reactions are not votes.
        self.own_id = own_id

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        vote = vote_of(payload.emoji)
        if vote is not None:
            await self._record(payload, vote)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        vote = vote_of(payload.emoji)
        if vote is not None:
            await self._record(payload, vote, added=False)

    async def _record(
        self, payload: discord.RawReactionActionEvent, vote: int, added: bool = True
    ) -> None:
        if payload.user_id == self.own_id():
            return
        try:
            counted = await self.services.feedback(payload.message_id, payload.user_id, vote, added)
        except Exception:  # the reaction stays on Discord; only our count misses it
            log.exception("could not record a vote on message %s", payload.message_id)
            return
        if counted:
            log.debug("vote %s on message %s", vote, payload.message_id)
