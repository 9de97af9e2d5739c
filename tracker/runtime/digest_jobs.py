"""The digests of ``tracker serve``: each route's made when due, delivered through the
outbox, retried until delivered, and a route's first made at once.

``Runtime`` (``tracker.runtime``) has one, and hands it what it uses: the clock, the
current configuration, the workers, each route's destination, and how to stop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from storage.outbox import DigestOutbox
from storage.state import SQLiteStateStore
from tracker.app import Tracker
from tracker.config import Config
from tracker.deliver.delivery import DeliveryReport, RetryPolicy, deliver
from tracker.deliver.routes import Route, route_named, routes
from tracker.runtime.schedule import (
    digest_due,
    last_fire_time,
    next_digest_note,
)
from tracker.runtime.worker import Stopping, Worker
from tracker.services import Destination
from tracker.text import plural

log = logging.getLogger(__name__)
T = TypeVar("T")

#: After a digest could not be delivered, the next attempt.
REDELIVER_AFTER = timedelta(minutes=10)


class DigestJobs:
    """Every route's digest: made when due, delivered, and delivered again until it is."""

    def __init__(
        self,
        config: Callable[[], Config],
        jobs: Worker[Tracker],
        outbox: Worker[SQLiteStateStore],
        destinations: Callable[[Route], Destination],
        *,
        now: Callable[[], datetime],
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]],
        stop: threading.Event,
        spawn: Callable[[Awaitable[None]], None],
        pause: Callable[[float], Awaitable[None]],
    ):
        """``sleep`` waits between tries of one delivery (a test's clock may stand in);
        ``pause`` waits for the next redelivery and wakes at once on ``stop``; ``spawn``
        runs a task in the background, owned by the runtime."""
        self._config = config
        self.jobs = jobs
        self.outbox = outbox
        self.destinations = destinations
        self.now = now
        self.retry = retry
        self.sleep = sleep
        self._stop = stop
        self._spawn = spawn
        self._pause = pause
        #: Held while a digest is made or posted: stopping waits for it (a safe point).
        self.lock = asyncio.Lock()
        self._redelivery_planned = False

    @property
    def config(self) -> Config:
        return self._config()

    async def all_digests(self) -> dict[str, DeliveryReport | None]:
        """``digest_job`` for every route, in the order of sources.yaml."""
        return {r.name: await self.digest_job(r.name) for r in routes(self.config)}

    async def digest_job(self, route_name: str | None = None) -> DeliveryReport | None:
        """Deliver a route's unfinished digest, then make its next if it is due and not made
        yet (the first route when ``route_name`` is None).

        Safe to call at any time and any number of times: a digest already made for the
        route's latest scheduled time is not made again (a laptop waking after a missed
        08:00 posts once), and a half-posted one is finished rather than started over. It
        never raises: a failure is logged and tried again in ``REDELIVER_AFTER``.
        """
        if self._stop.is_set():
            return None
        try:
            route = route_named(self.config, route_name)
        except KeyError:
            return None  # removed from sources.yaml since the job was planned
        try:
            return await self._digest(route)
        except (Stopping, asyncio.CancelledError):
            return None
        except Exception:
            log.exception(
                "%s failed; trying again in %s", _job_name(route), _minutes(REDELIVER_AFTER)
            )
            self._plan_redelivery()
            return None

    async def _digest(self, route: Route) -> DeliveryReport | None:
        async with self.lock:
            if self._stop.is_set():
                return None
            destination = self.destinations(route)
            config = self.config
            now = self.now()
            pending = await self._on_outbox(lambda o: o.pending(destination.name, route.name))
            report: DeliveryReport | None = None
            if pending is not None:
                created = await self._on_outbox(lambda o: o.created(pending))
                if last_fire_time(now, route) > created:
                    # Still undelivered when the next one's time came: the next carries its
                    # unsent stories, rather than yesterday's going out late, before today's.
                    log.error(
                        "digest %d was not delivered before the next was due; the next "
                        "carries its unsent stories",
                        pending,
                    )
                    await self._on_outbox(lambda o: o.abandon(pending, now))
                else:
                    report = await self._deliver(pending, destination)
                    if self._stop.is_set() or not report.complete:
                        return report
            last = await self._on_outbox(lambda o: o.sent(route.name)[1])
            # A route that never made a digest (a new home, or a route just added) makes
            # one at once, the best of its max_age, rather than silence until its time.
            first = await self._on_outbox(lambda o: o.none_made(route.name))
            if not first and not digest_due(last, now, route):
                return report if pending is not None else None
            if first and not await self.outbox.run(_collected_once):
                # Offline at the first start, whatever the hour: a first digest of nothing
                # is no first impression. It comes after the first collect that works.
                log.warning(
                    "no first digest%s yet: no source has been collected (see the errors "
                    "above, or tracker stats); it comes after the first collect that works",
                    "" if len(routes(config)) == 1 else f" of {route.name}",
                )
                return report if pending is not None else None
            closing = next_digest_note(now, route) if first else None
            digest = await self.jobs.run(lambda t: t.digest(config, now, None, closing, route))
            if first and digest.quiet and not digest_due(last, now, route):
                # Nothing collected yet (offline at the first start?): a first digest that
                # says nothing is no first impression; the next catch-up tries again.
                return report if pending is not None else None
            messages = destination.render(digest)
            digest_id = await self._on_outbox(
                lambda o: o.create(
                    now,
                    destination.name,
                    [(m.payload, m.story_ids) for m in messages],
                    route=route.name,
                )
            )
            log.info(
                "digest %d%s: %s in %s",
                digest_id,
                "" if len(routes(config)) == 1 else f" ({route.name}, to {destination.name})",
                plural(len(digest.entries), "story"),
                plural(len(messages), "message"),
            )
            return await self._deliver(digest_id, destination)

    async def _deliver(self, digest_id: int, destination: Destination) -> DeliveryReport:
        report = await deliver(
            digest_id,
            destination,
            self._on_outbox,
            self.now,
            self.retry,
            self.sleep,
            stopping=self._stop.is_set,
        )
        if not report.complete and not self._stop.is_set():
            # Discord is down or the bot lacks a permission: try again later, from where
            # it stopped.
            log.error(
                "digest %d: %d of its messages are not delivered yet (%s); retrying in %s",
                digest_id,
                report.left,
                report.error,
                _minutes(REDELIVER_AFTER),
            )
            self._plan_redelivery()
        return report

    async def first_digest(self, route_name: str) -> None:
        """A route just added makes its first digest now, not at its first time."""
        await self.digest_job(route_name)

    def _plan_redelivery(self) -> None:
        if not self._redelivery_planned and not self._stop.is_set():
            self._redelivery_planned = True
            self._spawn(self._redeliver_later())

    async def _redeliver_later(self) -> None:
        await self._pause(REDELIVER_AFTER.total_seconds())
        self._redelivery_planned = False
        await self.all_digests()

    async def _on_outbox(self, fn: Callable[[DigestOutbox], T]) -> T:
        return await self.outbox.run(lambda state: fn(DigestOutbox(state)))


def _job_name(route: Route) -> str:
    return f"the digest job of route {route.name}"


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} min"


def _collected_once(state: SQLiteStateStore) -> bool:
    """Whether any source has ever been collected (answered, even with nothing new)."""
    return any(s.last_success is not None for s in state.source_states().values())
