"""``/ask``: a question answered from the corpus, with its sources as links.

The answer can take seconds (retrieval, maybe an LLM), so the command defers at
once and answers through follow-ups. Each person may ask a few questions per
window; the limit is checked before deferring so a refusal stays private.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.ratelimit import SlidingWindow
from bot.replies import escaped, follow_up, reply, timestamp
from tracker.deliver.discord import CONTENT_LIMIT, len16
from tracker.deliver.discord_answer import render_answer
from tracker.services import Services
from tracker.times import parse_interval

log = logging.getLogger("tracker.bot.ask")

#: Five questions per ten minutes per person: enough for a conversation, not for a script.
QUESTIONS = 5
PER_SECONDS = 600.0


def parse_since(value: str | None) -> timedelta | None:
    """``12h``, ``1d``, ``7d``... as a timedelta; raises ValueError with a sentence for people
    (the value is the user's own text, so it comes back escaped)."""
    if value is None or not value.strip():
        return None
    try:
        return parse_interval(value.strip())
    except ValueError as exc:
        raise ValueError(
            f"I can't use `since`: {escaped(str(exc), 200)}. "
            "Write a number and a unit, such as 12h, 1d or 7d."
        ) from None


class AskCog(commands.Cog):
    def __init__(self, services: Services, limiter: SlidingWindow | None = None):
        self.services = services
        self.limiter = limiter or SlidingWindow(QUESTIONS, PER_SECONDS)

    @app_commands.command(name="ask", description="Ask a question about what the tracker has read")
    @app_commands.describe(
        question="What you want to know",
        since="Only stories from this recent past, such as 12h, 1d or 7d",
        kind="Only papers, posts or releases",
    )
    async def ask(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 2, 500],
        since: str | None = None,
        kind: Literal["paper", "post", "release"] | None = None,
    ) -> None:
        try:
            window = parse_since(since)
        except ValueError as exc:
            await reply(interaction, str(exc), ephemeral=True)
            return
        again = self.limiter.acquire(interaction.user.id)
        if again is not None:
            await reply(
                interaction,
                f"You've asked {self.limiter.limit} questions in the last "
                f"{int(self.limiter.per // 60)} minutes; you can ask again "
                f"{timestamp(datetime.fromtimestamp(again, UTC))}.",
                ephemeral=True,
            )
            return
        await interaction.response.defer(thinking=True)
        answer = await self.services.ask(question, window, kind)
        messages = [
            m.content
            for m in render_answer(answer.text, [(c.n, c.label, c.url) for c in answer.citations])
        ]
        await follow_up(interaction, _with_question(question, messages), ephemeral=False)
        log.info(
            "answered a question (%d citations, found=%s)", len(answer.citations), answer.found
        )


def _with_question(question: str, messages: list[str]) -> list[str]:
    """The question quoted above the answer: the channel sees what was asked, not only
    that someone used /ask. It shares the first message when both fit."""
    quoted = f"> {escaped(question, 300)}"
    if not messages:
        return [quoted]
    first = f"{quoted}\n{messages[0]}"
    if len16(first) <= CONTENT_LIMIT:
        return [first, *messages[1:]]
    return [quoted, *messages]
