"""The digest channel as a ``Destination`` and a ``Notifier``: sending, and naming failures.

Rendering is the tracker's (``render_discord``, one story per message so a
reaction or a thread belongs to one story); this module only posts each
message and turns every way Discord can refuse it into a ``DeliveryError``
that says whether waiting helps (an outage, a rate limit) or a person must act
(a missing permission, a wrong channel id).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import discord

from bot.replies import NO_PINGS
from tracker.deliver.discord import CONTENT_LIMIT, len16, render_discord, shorten
from tracker.errors import DeliveryError
from tracker.models import Digest
from tracker.services import Outgoing

log = logging.getLogger("tracker.bot.destination")

#: Seeded under every story so voting is one click away.
SEED_REACTIONS = ("👍", "👎")
#: Tries of each seeded reaction that Discord rate limits (each is discord.py's five tries).
SEED_TRIES = 3

#: How sending can fail for reasons outside the bot (everything else is a bug and surfaces).
SEND_FAILURES: tuple[type[BaseException], ...] = (
    discord.HTTPException,
    discord.RateLimited,
    TimeoutError,  # asyncio.TimeoutError is this one since Python 3.11
    aiohttp.ClientError,
    OSError,
)


#: Discord's JSON error codes for a message whose content it will never accept.
CONTENT_REFUSALS = frozenset({50035, 50006, 40005})


class ChannelSource(Protocol):
    """What finding a channel needs from the bot (a ``discord.Client``)."""

    def get_channel(self, id: int, /) -> Any: ...

    async def fetch_channel(self, channel_id: int, /) -> Any: ...


class DigestChannel:
    """The configured channel, looked up when first needed: the cache may not be filled when
    the first digest is due (setup runs before the gateway is ready), so it falls back to
    fetching it over HTTP."""

    def __init__(self, bot: ChannelSource, channel_id: int | None):
        self.bot = bot
        self.channel_id = channel_id
        self._fetched: Any = None

    async def get(self) -> Any:
        if not self.channel_id:
            raise DeliveryError(
                "no Discord channel is configured for the digest; set DISCORD_CHANNEL_ID "
                "(or digest.channel_id in sources.yaml)",
                retryable=False,
            )
        channel = self.bot.get_channel(self.channel_id) or self._fetched
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(self.channel_id)
            except SEND_FAILURES as exc:
                raise self.delivery_error(exc) from None
            self._fetched = channel
        if not hasattr(channel, "send"):
            raise DeliveryError(
                f"channel {self.channel_id} is not a text channel; point DISCORD_CHANNEL_ID "
                "(or digest.channel_id) at one",
                retryable=False,
            )
        return channel

    def label(self, channel: Any = None) -> str:
        name = getattr(channel or self._fetched, "name", None)
        return f"#{name}" if name else f"channel {self.channel_id}"

    def delivery_error(self, exc: BaseException, channel: Any = None) -> DeliveryError:
        """One of ``SEND_FAILURES`` said for the operator, with whether waiting may help:
        outages, rate limits and dropped connections pass; refusals need a person."""
        if isinstance(exc, discord.Forbidden):
            return DeliveryError(
                f"Discord refused the message ({exc.status}: {exc.text or 'Forbidden'}); give the "
                f"bot View Channel, Send Messages and Embed Links in {self.label(channel)}",
                retryable=False,
            )
        if isinstance(exc, discord.NotFound):
            return DeliveryError(
                f"channel {self.channel_id} does not exist or the bot cannot see it; check "
                "DISCORD_CHANNEL_ID / digest.channel_id",
                retryable=False,
            )
        if isinstance(exc, discord.RateLimited):
            return DeliveryError(
                f"Discord is rate limiting the bot for {exc.retry_after:.0f} s",
                retryable=True,
                retry_after=exc.retry_after,
            )
        if isinstance(exc, discord.HTTPException):
            if exc.status == 429 or exc.status >= 500:
                return DeliveryError(
                    f"Discord did not accept the message right now ({exc.status})",
                    retryable=True,
                    retry_after=retry_after_of(exc),
                )
            return DeliveryError(
                f"Discord rejected the message ({exc.status}: {exc.text or 'no reason given'})",
                retryable=False,
                # Discord refused this message's content (invalid form body, empty message,
                # too large): the channel works, so the rest of the digest can go. Other
                # 400s (an archived thread...) are the channel's, and wait for a person.
                refused=exc.status == 413 or exc.code in CONTENT_REFUSALS,
            )
        return DeliveryError(
            f"could not reach Discord ({type(exc).__name__}: {exc})", retryable=True
        )


#: Discord's longest message nonce.
NONCE_CHARS = 25


def nonce_of(payload: dict[str, Any], key: str = "") -> str:
    """The nonce a digest message is sent with: the same for the same message, however
    often it is sent. When Discord accepts a message but its answer is lost (the connection
    drops, a proxy times out), delivery cannot tell and sends it again; with the nonce
    enforced (discord.py asks for that whenever a nonce is given), Discord answers with
    the message it already made from the same author with the same nonce in the past few
    minutes instead of posting it twice. Delivery's own retries fall within those minutes.

    ``key`` (the message's place in the outbox) keeps apart two messages that read the
    same: one story in two routes' digests to one channel is two messages."""
    text = key + "\n" + json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:NONCE_CHARS]


def retry_after_of(exc: discord.HTTPException) -> float | None:
    """The wait Discord asked for in a refusal: discord.py waits as told on a 429 but gives
    up after five tries, and its exception keeps only the response's headers.

    ``Retry-After`` (whole seconds, also on a 503) is the wait; on a 429 of the bot's own
    bucket (``X-RateLimit-Scope: user``), ``X-RateLimit-Reset-After`` says it to the
    millisecond. A shared or global limit's bucket reset is not the wait, and a 5xx's
    bucket headers say nothing about the outage: those keep delivery's own backoff."""
    headers = getattr(exc.response, "headers", None) or {}
    names = ["Retry-After"]
    if exc.status == 429 and headers.get("X-RateLimit-Scope") == "user":
        names.insert(0, "X-RateLimit-Reset-After")
    for name in names:
        try:
            return max(0.0, float(headers[name]))
        except (KeyError, TypeError, ValueError):
            continue
    return None


#: Messages of the channel looked through for one whose answer was lost.
HISTORY = 50


def outcome_unknown(exc: BaseException) -> bool:
    """Whether Discord may have made the message although sending failed: the connection
    was lost or timed out, or Discord itself failed (5xx) midway. A 4xx or a 429 is a
    refusal: nothing was made."""
    if isinstance(exc, discord.HTTPException):
        return exc.status >= 500
    return isinstance(exc, TimeoutError | aiohttp.ClientError | OSError)


def shown(content: str | None, embeds: list[dict[str, Any]]) -> tuple[Any, ...]:
    """What a reader sees of a message: its text and each embed's title, link and text."""
    return (
        content or "",
        tuple((e.get("title"), e.get("url"), e.get("description")) for e in embeds),
    )


def render_messages(digest: Digest) -> list[Outgoing]:
    """The digest as the bot posts it: one story per message."""
    return [
        Outgoing(m.to_payload(), m.story_ids) for m in render_discord(digest, embeds_per_message=1)
    ]


class ChannelDestination:
    """Digests as messages in one Discord channel, one story per message."""

    def __init__(self, bot: ChannelSource, channel_id: int | None):
        self.name = f"discord:{channel_id}" if channel_id else "discord"
        self.channel = DigestChannel(bot, channel_id)
        self._seeding: set[asyncio.Task[None]] = set()
        #: Messages (by outbox key) sent without an answer, and when the first such try
        #: began: Discord may have made them since.
        self._unsure: dict[str, datetime] = {}

    def render(self, digest: Digest) -> list[Outgoing]:
        return render_messages(digest)

    async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
        channel = await self.channel.get()
        if key in self._unsure:
            # Discord forgets a nonce after a few minutes; a redelivery may come later.
            made = await self._already_posted(channel, payload, self._unsure[key])
            if made is not None:
                del self._unsure[key]
                return made
        embeds = [discord.Embed.from_dict(e) for e in payload.get("embeds", [])]
        began = discord.utils.utcnow()
        try:
            message = await channel.send(
                content=payload.get("content") or None,
                embeds=embeds,
                allowed_mentions=NO_PINGS,
                nonce=nonce_of(payload, key),
            )
        except SEND_FAILURES as exc:
            if key and outcome_unknown(exc):
                self._unsure.setdefault(key, began)
            raise self.channel.delivery_error(exc, channel) from None
        self._unsure.pop(key, None)
        if embeds:
            # Seeding runs beside delivery, so the message is recorded as sent at once.
            task = asyncio.create_task(self._seed(message))
            self._seeding.add(task)
            task.add_done_callback(self._seeding.discard)
        return str(message.id)

    async def _already_posted(
        self, channel: Any, payload: dict[str, Any], since: datetime
    ) -> str | None:
        """The id of the bot's own message that reads as ``payload`` does and was made
        since the first try whose answer was lost (so not the same story in another
        route's digest a moment before), if Discord made it after all; None when there is
        none or the history cannot be read (the message is then sent, with its nonce)."""
        me = getattr(getattr(self.channel.bot, "user", None), "id", None)
        wanted = shown(payload.get("content"), payload.get("embeds") or [])
        try:
            # From the start of ``since``'s millisecond: discord.py's ``after=datetime``
            # would leave out a message made in that very millisecond.
            after = discord.Object(discord.utils.time_snowflake(since) - 1)
            async for message in channel.history(limit=HISTORY, after=after):
                if (
                    message.author.id == me
                    and shown(message.content, [e.to_dict() for e in message.embeds]) == wanted
                ):
                    return str(message.id)
        except SEND_FAILURES as exc:
            log.info("could not read the channel's history to look for a message: %s", exc)
        return None

    async def settle(self, timeout: float | None = None) -> None:
        """Wait for reactions still being seeded; after ``timeout`` seconds, drop the rest
        (on shutdown a seed is not worth waiting on a slow Discord for)."""
        if not self._seeding:
            return
        _, pending = await asyncio.wait(set(self._seeding), timeout=timeout)
        for task in pending:
            task.cancel()

    async def _seed(self, message: Any) -> None:
        for emoji in SEED_REACTIONS:
            for attempt in range(1, SEED_TRIES + 1):
                try:
                    await message.add_reaction(emoji)
                    break
                except SEND_FAILURES as exc:  # voting still works without the seed
                    wait = _rate_limited_for(exc)
                    if wait is not None and attempt < SEED_TRIES:
                        await asyncio.sleep(wait)  # discord.py gave up after its own tries
                        continue
                    advice = (
                        "give the bot Add Reactions and Read Message History"
                        if isinstance(exc, discord.Forbidden)
                        else "readers can still vote by reacting themselves"
                    )
                    log.warning(
                        "could not add %s under message %s (%s); %s",
                        emoji,
                        getattr(message, "id", "?"),
                        exc,
                        advice,
                    )
                    if isinstance(exc, discord.Forbidden):
                        return  # the other one would be refused too
                    break


def _rate_limited_for(exc: BaseException) -> float | None:
    """Seconds Discord asked to wait when ``exc`` is a rate limit, else None."""
    if isinstance(exc, discord.RateLimited):
        return exc.retry_after
    if isinstance(exc, discord.HTTPException) and exc.status == 429:
        return retry_after_of(exc) or 1.0
    return None


class ChannelNotifier:
    """Announcements (a source failing, a bad sources.yaml) in the digest channel.

    An announcement is a side note: when it cannot be sent it is logged and
    dropped, never raised into the job that made it.
    """

    def __init__(self, bot: ChannelSource, channel_id: int | None):
        self.channel = DigestChannel(bot, channel_id)

    async def announce(self, text: str) -> bool:
        try:
            channel = await self.channel.get()
            await channel.send(
                content=fit_message(text), allowed_mentions=NO_PINGS, suppress_embeds=True
            )
        except Exception as exc:
            log.warning("announcement not sent (%s): %s", exc, shorten(text, 200, lambda s: s))
            return False
        return True


def fit_message(text: str) -> str:
    """``text`` within 2,000 characters; a code block cut short is closed again."""
    if len16(text) <= CONTENT_LIMIT:
        return text
    cut = shorten(text, CONTENT_LIMIT - 4, lambda s: s)
    if cut.count("```") % 2:
        cut += "\n```"
    return cut
