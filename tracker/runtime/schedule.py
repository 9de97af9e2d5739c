"""When things run: the job plan derived from ``sources.yaml``, and the scheduler that keeps it.

``plan_jobs`` turns a Config into one job per enabled source (``collect:<name>``)
and one job per digest route (``digest:<route>``, daily or weekly); it is pure, so
an edit to the file can be compared plan-for-plan and only the jobs that changed
are touched. ``Scheduler`` keeps
an APScheduler 3 ``AsyncIOScheduler`` in step with that plan inside the
caller's event loop (the Discord bot's), with the rules that make a laptop
behave: runs missed while asleep are coalesced into one, a job never overlaps
itself, and a digest missed by less than half a day is still sent, once.

``digest_due`` answers the question APScheduler's in-memory job store cannot:
was a digest missed while the process was not running at all?
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tracker.config import Config
from tracker.config.kinds import kind_of
from tracker.deliver.routes import routes

log = logging.getLogger(__name__)

DIGEST_PREFIX = "digest:"
COLLECT_PREFIX = "collect:"

#: A digest this late is still sent (a laptop asleep at 08:00 posts on waking); later
#: than this it is skipped, because a digest at midnight is worse than none.
DIGEST_GRACE = timedelta(hours=12)

_ONE_TICK = timedelta(microseconds=1)


def collect_job_id(source_name: str) -> str:
    return COLLECT_PREFIX + source_name


def source_of(job_id: str) -> str | None:
    """The source a ``collect:`` job collects; None for a digest."""
    return job_id.removeprefix(COLLECT_PREFIX) if job_id.startswith(COLLECT_PREFIX) else None


def digest_job_id(route_name: str) -> str:
    return DIGEST_PREFIX + route_name


def route_of(job_id: str) -> str | None:
    """The route a ``digest:`` job makes digests for; None for a collection."""
    return job_id.removeprefix(DIGEST_PREFIX) if job_id.startswith(DIGEST_PREFIX) else None


class Cadence(Protocol):
    """When digests go out: at a local time, daily (``weekday`` None) or weekly on
    ``weekday`` (0 is Monday). A route is one; so are the ``digest:`` settings."""

    @property
    def at(self) -> time: ...

    @property
    def timezone(self) -> str: ...

    @property
    def weekday(self) -> int | None: ...


# --- the plan (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class JobPlan:
    """When one job runs: every ``seconds``, or at ``hour:minute`` in ``timezone`` daily
    (``weekday`` None) or weekly.

    Plain values rather than an APScheduler trigger, so that two plans compare
    equal exactly when the schedule is the same and an unchanged job is left alone.
    """

    kind: Literal["interval", "daily"]
    seconds: int = 0
    hour: int = 0
    minute: int = 0
    timezone: str = "UTC"
    weekday: int | None = None

    @classmethod
    def every(cls, interval: timedelta) -> JobPlan:
        return cls("interval", seconds=int(interval.total_seconds()))

    @classmethod
    def daily(cls, at: time, timezone: str, weekday: int | None = None) -> JobPlan:
        return cls("daily", hour=at.hour, minute=at.minute, timezone=timezone, weekday=weekday)

    @property
    def misfire_grace_time(self) -> int | None:
        """Seconds a run may be late and still happen; None means however late.

        A late collection is always worth doing (coalescing makes it one run); a
        late digest only within ``DIGEST_GRACE``.
        """
        return int(DIGEST_GRACE.total_seconds()) if self.kind == "daily" else None

    def trigger(self) -> BaseTrigger:
        if self.kind == "daily":
            return DigestTrigger(
                time(self.hour, self.minute), ZoneInfo(self.timezone), self.weekday
            )
        return IntervalTrigger(seconds=self.seconds, timezone=UTC)


def plan_jobs(config: Config) -> dict[str, JobPlan]:
    """One ``collect:<name>`` job per enabled source and a ``digest:<route>`` job per route."""
    plans = {
        collect_job_id(source.name): JobPlan.every(source.interval or kind_of(source.kind).interval)
        for source in config.sources
        if source.enabled
    }
    for route in routes(config):
        plans[digest_job_id(route.name)] = JobPlan.daily(route.at, route.timezone, route.weekday)
    return plans


# --- the digest's clock (pure) -----------------------------------------------------------


def fire_on(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The one instant of ``day`` (a local calendar day) at which the digest goes out.

    DST makes a local time ambiguous twice a year. A time the clocks skip
    (02:30 on the spring-forward night) is read with the offset from before the
    change, so it lands just after the gap (03:30); a time the clocks repeat
    means its first occurrence. Either way every local day has exactly one.
    """
    local = datetime.combine(day, at, tzinfo=zone)  # fold=0: the earlier reading
    return local.astimezone(UTC).astimezone(zone)  # via UTC so a skipped time is normalised


def _goes_out_on(day: date, weekday: int | None) -> bool:
    return weekday is None or day.weekday() == weekday


def last_fire_time(now: datetime, digest: Cadence) -> datetime:
    """The most recent scheduled digest time at or before ``now``, in UTC."""
    _require_aware(now, "now")
    zone = ZoneInfo(digest.timezone)
    today = now.astimezone(zone).date()
    for back in range(9):
        day = today - timedelta(days=back)
        if not _goes_out_on(day, digest.weekday):
            continue
        fire = fire_on(day, digest.at, zone)
        if fire <= now:
            return fire.astimezone(UTC)
    raise AssertionError("a weekly time always occurs within eight days")  # pragma: no cover


def next_fire_time(now: datetime, digest: Cadence) -> datetime:
    """The next scheduled digest time after ``now``, in UTC."""
    _require_aware(now, "now")
    zone = ZoneInfo(digest.timezone)
    fire = DigestTrigger(digest.at, zone, digest.weekday).get_next_fire_time(None, now + _ONE_TICK)
    if fire is None:  # pragma: no cover - a weekly time always occurs within eight days
        raise AssertionError("no next digest time")
    return fire.astimezone(UTC)


def next_digest_note(now: datetime, digest: Cadence) -> str:
    """How the first digest ends: when the next one comes, in the digest's time zone."""
    fire = next_fire_time(now, digest).astimezone(ZoneInfo(digest.timezone))
    local = now.astimezone(ZoneInfo(digest.timezone)).date()
    day = (
        "today"
        if fire.date() == local
        else ("tomorrow" if fire.date() == local + timedelta(days=1) else f"on {fire:%A %d %B}")
    )
    return (
        f"This was your first digest. The next one comes {day} at {fire:%H:%M} "
        f"({digest.timezone}), with what is new by then."
    )


def digest_due(last_completed: datetime | None, now: datetime, digest: Cadence) -> bool:
    """Whether a digest is owed: its latest scheduled time passed after the last one sent.

    ``tracker serve`` asks this at start-up, because the scheduler only knows
    about times it was running for. However many days were missed, the answer is
    one digest, and only while the latest time is less than ``DIGEST_GRACE`` ago
    (the same rule as a misfire of the scheduled job). A tracker that never sent
    one owes today's only once its time has come: starting at 07:00 does not owe
    yesterday's.
    """
    _require_aware(now, "now")
    fire = last_fire_time(now, digest)
    if now - fire > DIGEST_GRACE:
        return False  # too late for today's; tomorrow's comes at its time
    if last_completed is None:
        zone = ZoneInfo(digest.timezone)
        return fire.astimezone(zone).date() == now.astimezone(zone).date()
    _require_aware(last_completed, "last_completed")
    return fire > last_completed


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


class DigestTrigger(BaseTrigger):
    """An APScheduler trigger that fires once per local day (or once a week, on
    ``weekday``) at ``at`` in ``zone``.

    Used instead of ``CronTrigger(hour=, minute=)`` because the cron trigger fires
    twice on the night the clocks go back when the time falls in the repeated hour
    (02:30 in Europe/Berlin), and a digest must go out once. It shares ``fire_on``
    with ``last_fire_time``, so the schedule and the start-up catch-up can never
    disagree about when a digest was due.
    """

    __slots__ = ("at", "weekday", "zone")

    def __init__(self, at: time, zone: ZoneInfo, weekday: int | None = None):
        self.at = at
        self.zone = zone
        self.weekday = weekday

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # Strictly after the previous fire: APScheduler walks missed runs this way.
        start = now if previous_fire_time is None else previous_fire_time + _ONE_TICK
        day = start.astimezone(self.zone).date()
        for offset in range(-1, 9):
            if not _goes_out_on(day + timedelta(days=offset), self.weekday):
                continue
            fire = fire_on(day + timedelta(days=offset), self.at, self.zone)
            if fire >= start:
                return fire
        return None  # pragma: no cover - a weekly time always occurs within eight days

    def __str__(self) -> str:
        when = "daily" if self.weekday is None else f"weekly on day {self.weekday}"
        return f"{when} at {self.at:%H:%M} {self.zone.key}"

    def __repr__(self) -> str:
        return (
            f"<DigestTrigger ({self.at:%H:%M}, timezone={self.zone.key!r}, "
            f"weekday={self.weekday!r})>"
        )


# --- the scheduler (I/O edge) ------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What ``Scheduler.apply`` did, job ids sorted, for a log line or a bot message."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    rescheduled: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.rescheduled)

    def __str__(self) -> str:
        parts = [
            f"{verb} {', '.join(ids)}"
            for verb, ids in (
                ("added", self.added),
                ("removed", self.removed),
                ("rescheduled", self.rescheduled),
            )
            if ids
        ]
        return "; ".join(parts) or "no changes"


class Scheduler:
    """Keeps collect and digest jobs in step with the configuration, in the caller's loop.

    ``collect(source_name)`` and ``digest()`` are awaited on the event loop that
    was running when ``start()`` was called, and what they return is ignored.
    They should hand blocking work to threads and serialise it themselves
    (several collect jobs may be due at the same moment; at start-up they all
    are). An exception in either is logged by APScheduler and the job simply
    runs again at its next time.
    """

    def __init__(
        self,
        collect: Callable[[str], Awaitable[object]],
        digest: Callable[[str], Awaitable[object]],
        scheduler: AsyncIOScheduler | None = None,
    ):
        self._collect = collect
        self._digest = digest
        if scheduler is None:
            scheduler = AsyncIOScheduler(
                timezone=UTC,
                # Also set on each job, so an injected scheduler's defaults cannot weaken them.
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            )
        self._scheduler = scheduler
        self._plans: dict[str, JobPlan] = {}

    def apply(self, config: Config, first_runs: Mapping[str, datetime] | None = None) -> Changes:
        """Make the jobs match ``config``: add new, remove gone, reschedule changed.

        An unchanged job is not touched, so its next run time stays where it
        was. A new collect job runs at once, so a source a person just added is
        collected without waiting a whole interval; ``first_runs`` (by source
        name, aware datetimes) can say when a new source is next due instead, so
        that a restart collects each source when its interval is up rather than
        all of them again at once (a time in the past means at once).
        """
        wanted = plan_jobs(config)
        added = sorted(wanted.keys() - self._plans.keys())
        removed = sorted(self._plans.keys() - wanted.keys())
        rescheduled = sorted(
            job_id
            for job_id in wanted.keys() & self._plans.keys()
            if wanted[job_id] != self._plans[job_id]
        )
        for job_id in removed:
            try:
                self._scheduler.remove_job(job_id)
            except JobLookupError:
                log.warning("job %s was already gone", job_id)
        for job_id in rescheduled:
            self._reschedule(job_id, wanted[job_id])
        now = datetime.now(UTC)
        for job_id in added:
            self._add(job_id, wanted[job_id], now, first_runs or {})
        self._plans = wanted
        return Changes(tuple(added), tuple(removed), tuple(rescheduled))

    def start(self, paused: bool = False) -> None:
        """Start processing jobs on the running event loop (call it from inside the loop).

        ``paused`` schedules the jobs (next run times are computed) but runs none,
        for dry runs and tests.
        """
        self._scheduler.start(paused=paused)

    def shutdown(self, wait: bool = False) -> None:
        """Stop scheduling; safe to call when not started.

        AsyncIOScheduler stops on the loop's next turn. Its executor cancels the
        jobs still being awaited whatever ``wait`` says (it cannot wait without
        being a coroutine); work they already handed to a thread finishes there.
        """
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def wakeup(self) -> None:
        """Look for due jobs now rather than when the current timer fires.

        The loop's timers run on a monotonic clock that stops while the machine
        sleeps, so after a resume the scheduler's wait would run long by however
        long it slept. Calling this periodically (on each poll of the config
        watcher, say) bounds that delay to one period.
        """
        if self._scheduler.running:
            self._scheduler.wakeup()

    def job_ids(self) -> list[str]:
        """The ids of the jobs actually scheduled, sorted."""
        return sorted(job.id for job in self._scheduler.get_jobs() if job.id in self._plans)

    def next_run_times(self) -> dict[str, datetime]:
        """When each job runs next; before ``start()``, as its trigger would place it."""
        now = datetime.now(UTC)
        times: dict[str, datetime] = {}
        for job in self._scheduler.get_jobs():
            if job.id not in self._plans:
                continue
            # A job added before start() has no next_run_time attribute until the scheduler starts.
            when = getattr(job, "next_run_time", None)
            if when is None and job.pending:
                when = job.trigger.get_next_fire_time(None, now)
            if when is not None:
                times[job.id] = when
        return times

    # --- jobs ---

    def _add(
        self, job_id: str, plan: JobPlan, now: datetime, first_runs: Mapping[str, datetime]
    ) -> None:
        source = source_of(job_id)
        route = route_of(job_id)
        options: dict[str, Any] = {
            "id": job_id,
            "trigger": plan.trigger(),
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": plan.misfire_grace_time,
        }
        if route is not None:
            self._scheduler.add_job(
                self._run_digest, args=(route,), name=f"digest {route}", **options
            )
        elif source is not None:
            self._scheduler.add_job(
                self._run_collect,
                args=(source,),
                name=f"collect {source}",
                next_run_time=max(now, first_runs.get(source, now)),
                **options,
            )

    def _reschedule(self, job_id: str, plan: JobPlan) -> None:
        trigger = plan.trigger()
        changes: dict[str, Any] = {
            "trigger": trigger,
            "misfire_grace_time": plan.misfire_grace_time,
        }
        if self._scheduler.running:
            # Restart the schedule from now; before start() a pending job keeps its first
            # run (a new source's immediate collection) and APScheduler computes the rest.
            changes["next_run_time"] = trigger.get_next_fire_time(None, datetime.now(UTC))
        self._scheduler.modify_job(job_id, **changes)

    # Bound ``async def`` methods, so that APScheduler's AsyncIOExecutor awaits them on the
    # loop whatever kind of awaitable-returning callable was injected.
    async def _run_collect(self, source_name: str) -> None:
        await self._collect(source_name)

    async def _run_digest(self, route_name: str) -> None:
        await self._digest(route_name)
