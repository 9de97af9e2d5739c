"""Readers' votes: 👍 and 👎 on a digest story's message become feedback for ranking.

Raw reaction events arrive for every message the bot can see, cached or not,
and need only the guild-reactions intent (no message content). The tracker
decides whether the message is a digest story; the bot ignores its own seeded
reactions and every other emoji.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

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


#: The votes a reader still shows on a message (by their remaining thumbs), or None when
#: that cannot be told (the message could not be fetched).
RemainingVotes = Callable[[discord.RawReactionActionEvent], Awaitable[set[int] | None]]


class FeedbackCog(commands.Cog):
    def __init__(
        self,
        services: Services,
        own_id: Callable[[], int | None],
        remaining_votes: RemainingVotes | None = None,
    ):
        self.services = services
        #: The bot's own user id once logged in: its seeded reactions are not votes.
        self.own_id = own_id
        self.remaining_votes = remaining_votes

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        vote = vote_of(payload.emoji)
        if vote is not None:
            await self._record(payload, vote)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        vote = vote_of(payload.emoji)
        if vote is None or payload.user_id == self.own_id():
            return
        # Taking a thumb away leaves what the reader still shows: the other thumb (then
        # that is the vote), the same thumb in another skin tone, or nothing (withdrawn).
        left = await self.remaining_votes(payload) if self.remaining_votes else None
        if left is None:
            await self._record(payload, vote, added=False)  # withdraw it, if it is current
        elif len(left) == 1:
            await self._record(payload, next(iter(left)))
        elif not left:
            await self._record(payload, vote, added=False)
        # both thumbs still there: the latest one added stays the vote

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
