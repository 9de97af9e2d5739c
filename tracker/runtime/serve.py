"""``tracker serve``: the scheduler, and the Discord bot when a token is set.

Without ``DISCORD_TOKEN`` it still collects on schedule and writes each digest
to ``TRACKER_HOME/digests/YYYY-MM-DD.md`` and the terminal, so the main job
runs with no accounts at all. SIGINT or SIGTERM stops it cleanly: the job in
progress stops at its next safe point (every source and every digest message
is saved as it completes), a second signal quits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from tracker.config import Config
from tracker.deliver.routes import Route
from tracker.errors import ConfigError, ConfigProblem, TrackerError
from tracker.runtime import Runtime
from tracker.runtime.local_services import LocalServices
from tracker.runtime.lock import InstanceLock
from tracker.services import Destination
from tracker.settings import Settings

log = logging.getLogger(__name__)


class BotLoginError(TrackerError):
    pass


#: The first wait before logging in to Discord again after it could not be reached.
LOGIN_RETRY = 5.0
LOGIN_RETRY_CAP = 300.0


async def serve(
    settings: Settings,
    config: Config,
    stop: asyncio.Event | None = None,
    login_retry: float = LOGIN_RETRY,
) -> None:
    """Run until ``stop`` is set (or a signal arrives). Holds the single-instance lock."""
    stop = stop or asyncio.Event()
    _on_signals(stop)
    with InstanceLock(settings.lock_path):
        runtime = Runtime(settings, config)
        try:
            if settings.discord_token:
                await _with_bot(settings, config, runtime, stop, login_retry)
            else:
                log.info(
                    "no DISCORD_TOKEN: digests go to %s and the terminal", settings.digests_path
                )
                await runtime.start()
                await stop.wait()
        finally:
            log.info("stopping")
            await runtime.stop()
        log.info("stopped")


async def _with_bot(
    settings: Settings, config: Config, runtime: Runtime, stop: asyncio.Event, retry: float
) -> None:
    """The runtime runs from the start, whether or not Discord can be reached; the bot
    logs in, and when Discord drops it or cannot be reached, a new bot logs in again
    with backoff. Only a rejected token ends it: waiting would not help."""
    import discord

    from bot.client import TrackerBot
    from bot.relay import BotRelay

    network_errors = _network_errors()
    channel_id = settings.discord_channel_id or config.digest.channel_id
    relay = BotRelay(channel_id)
    files = runtime.destinations

    def destination(route: Route) -> Destination:
        # A route's own channel, else the digest's; without either, files as before.
        own = route.channel_id or settings.discord_channel_id or runtime.config.digest.channel_id
        return relay.channel(own) if own else files(route)

    runtime.destinations = destination
    if channel_id:
        runtime.notifier = relay
    else:
        log.warning(
            "no channel for the digest: set DISCORD_CHANNEL_ID (or digest.channel_id in "
            "sources.yaml); until then digests without a channel of their own go to %s",
            settings.digests_path,
        )
    services = LocalServices(runtime)
    await runtime.start()
    delay = retry
    while not stop.is_set():
        bot = TrackerBot(services, channel_id, guild_id=settings.discord_guild_id)
        relay.bot = bot
        began = asyncio.get_running_loop().time()
        bot_task = asyncio.ensure_future(bot.start(settings.discord_token or ""))
        stop_task = asyncio.ensure_future(stop.wait())
        flush = asyncio.ensure_future(relay.flush_when_ready())
        try:
            await asyncio.wait({bot_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_task.cancel()
            flush.cancel()
            if stop.is_set() or not bot_task.done():
                # The digest reaches a safe point (a message Discord accepted is recorded)
                # while the bot can still talk to Discord; only then does the bot close.
                await runtime.stop()
            await bot.close()
            if not bot_task.done():
                bot_task.cancel()
            await asyncio.gather(bot_task, return_exceptions=True)
        if stop.is_set():
            return
        exc = bot_task.exception() if not bot_task.cancelled() else None
        if token_rejected(exc):
            raise ConfigError(
                [
                    ConfigProblem(
                        "environment",
                        None,
                        "DISCORD_TOKEN",
                        "Discord rejected the token",
                        "copy the bot's token again from the Developer Portal (Applications > "
                        "your app > Bot > Reset Token), or unset DISCORD_TOKEN to write "
                        "digests to files",
                    )
                ]
            ) from None
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            raise BotLoginError(
                "Discord refused the bot's intents; tracker needs no privileged intents, so "
                "this is a bug: please report it"
            ) from None
        if asyncio.get_running_loop().time() - began > LOGIN_RETRY_CAP:
            delay = retry  # it was up for a while: this is a new outage, not the same one
        reason = f"{type(exc).__name__}: {exc}" if exc else "the connection ended"
        network = exc is None or isinstance(exc, network_errors)
        log.warning(
            "%s (%s); collecting goes on, logging in again in %.0f s",
            "cannot reach Discord" if network else "the Discord bot stopped unexpectedly",
            reason,
            delay,
            exc_info=exc if not network else None,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        delay = min(delay * 2, LOGIN_RETRY_CAP)


#: The gateway's close code for a token it does not accept ("Authentication failed").
AUTHENTICATION_FAILED = 4004


def token_rejected(exc: BaseException | None) -> bool:
    """Discord refused the token: at login (a 401, ``LoginFailure``) or, when the token was
    revoked after that, at the gateway's IDENTIFY (close code 4004, which discord.py raises
    as ``ConnectionClosed``, not as ``LoginFailure``). Waiting will not help either."""
    import discord

    if isinstance(exc, discord.LoginFailure):
        return True
    return isinstance(exc, discord.ConnectionClosed) and exc.code == AUTHENTICATION_FAILED


def _network_errors() -> tuple[type[BaseException], ...]:
    import aiohttp
    import discord

    return (
        OSError,
        TimeoutError,
        aiohttp.ClientError,
        discord.HTTPException,
        discord.GatewayNotFound,
        discord.ConnectionClosed,
    )


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    count = 0

    def handle() -> None:
        nonlocal count
        count += 1
        if count == 1:
            log.info("stopping after the current step (signal again to quit at once)")
            stop.set()
        else:
            os._exit(130)  # state is saved step by step; nothing half-written survives

    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows, or not the main thread: Ctrl-C still raises KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handle)
