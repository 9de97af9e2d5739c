"""How the bot talks back: no pings, no scraped formatting, nothing over Discord's limits.

Every command answers through these helpers, so the rules hold in one place:
``allowed_mentions`` is always none, scraped text is escaped before it reaches
Markdown, a link is only a link when its URL is plain http(s), and content is
packed into messages of at most 2,000 characters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import discord

from tracker.deliver.discord import (
    CONTENT_LIMIT,
    escape_markdown_and_mentions,
    shorten,
    usable_url,
)
from tracker.deliver.discord_answer import pack as pack_units

T = TypeVar("T")

#: The one mention policy of the bot: it never pings anyone, whatever the text says.
NO_PINGS = discord.AllowedMentions.none()

SOMETHING_WENT_WRONG = "Something went wrong on my side; try again in a minute."
NEEDS_MANAGE_SERVER = "You need the Manage Server permission to change sources."


def safe_url(url: str) -> str | None:
    """``url`` fit to be a Markdown link target, or None when it is not a plain http(s) URL."""
    return usable_url(url.strip())


def link(label: str, url: str, limit: int = 200) -> str:
    """Scraped ``label`` as a masked link to ``url``, or as plain escaped text without one."""
    text = shorten(" ".join(label.split()) or "(untitled)", limit)
    target = safe_url(url)
    return f"[{text}]({target})" if target else text


def escaped(text: str, limit: int) -> str:
    """Scraped text on one line, escaped, and cut to ``limit`` characters."""
    return shorten(" ".join(text.split()), limit, escape_markdown_and_mentions)


def timestamp(when: datetime, style: str = "R") -> str:
    """A Discord timestamp: each reader sees it in their own zone ("in 3 hours", "2 days ago")."""
    if when.tzinfo is None:  # tracker stores UTC; a naive time is UTC
        when = when.replace(tzinfo=UTC)
    return f"<t:{int(when.timestamp())}:{style}>"


def pack(lines: Iterable[str], limit: int = CONTENT_LIMIT, separator: str = "\n") -> list[str]:
    """Lines joined into as few messages as fit ``limit``; a line never straddles two
    (unless it is longer than a message on its own)."""
    return pack_units(((line, separator) for line in lines), limit)


async def reply(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    """Answer with ``text`` whether or not the interaction was answered (or deferred) yet:
    Discord takes one initial response, then only follow-ups."""
    text = shorten(text, CONTENT_LIMIT, lambda s: s)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(
            text, ephemeral=ephemeral, allowed_mentions=NO_PINGS
        )


async def follow_up(
    interaction: discord.Interaction,
    contents: Sequence[str],
    *,
    ephemeral: bool,
    previews: bool = False,
) -> None:
    """Send ``contents`` as follow-ups of a deferred interaction, in order.

    Link previews are off unless asked for: five citations would otherwise
    unfurl into five cards under the answer.
    """
    for content in contents:
        await interaction.followup.send(
            content,
            ephemeral=ephemeral,
            allowed_mentions=NO_PINGS,
            suppress_embeds=not previews,
        )


#: Discord drops an autocomplete answer that takes longer than 3 s.
AUTOCOMPLETE_SECONDS = 2.5


async def suggestions(fetch: Awaitable[T], what: str, nothing: T) -> T:
    """What ``fetch`` gives within Discord's autocomplete deadline, else ``nothing``:
    suggestions are a nicety, and no suggestions beats an error."""
    try:
        return await asyncio.wait_for(fetch, AUTOCOMPLETE_SECONDS)
    except Exception:
        logging.getLogger("tracker.bot").debug("%s autocomplete failed", what, exc_info=True)
        return nothing
