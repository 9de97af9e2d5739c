"""The long-running tracker: scheduled collection, the digests of every route, and live config.

``Runtime`` is what ``tracker serve`` runs, with or without the Discord bot.
It owns three workers, each a thread with its own SQLite connection, so the
event loop never blocks and SQLite sees one caller per connection:

- ``jobs``: collecting, processing, choosing the digest (the slow work);
- ``queries``: what people ask for (/ask, /search, /why), not stuck behind a
  long collect;
- ``outbox``: marking digest messages as sent and storing feedback, quick
  writes that must not wait for a collect either.

Every job is safe to stop at any point: each source is saved in its own
transaction and each digest message is marked only once accepted, so a
stopped (or killed) process resumes where it was on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from storage.notices import NoticeStore
from storage.state import SQLiteStateStore
from tracker.app import Tracker
from tracker.collect import collect
from tracker.config import Config
from tracker.config.kinds import kind_of
from tracker.deliver.delivery import FileDestination, RetryPolicy
from tracker.deliver.health import HealthChange, health_changes
from tracker.deliver.routes import Route
from tracker.embedder import Embedder
from tracker.errors import ConfigError, TrackerError
from tracker.models import SourceResult, Status
from tracker.runtime.digest_jobs import DigestJobs
from tracker.runtime.schedule import (
    Scheduler,
    route_of,
)
from tracker.runtime.watch import ConfigWatcher
from tracker.runtime.worker import Stopping, Worker
from tracker.services import Destination, Notifier
from tracker.settings import Settings
from tracker.times import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How often sources.yaml is checked for edits.
WATCH_SECONDS = 5.0


class LogNotifier:
    """Announcements without a bot. The runtime logs every announcement in plain words as
    it makes it, so here there is nothing more to say."""

    async def announce(self, text: str) -> bool:
        log.debug("announcement: %s", text)
        return True


@dataclass(frozen=True)
class CollectRun:
    results: tuple[SourceResult, ...]
    new_stories: int
    health: tuple[HealthChange, ...]


class Runtime:
    def __init__(
        self,
        settings: Settings,
        config: Config,
        destination: Destination | None = None,
        notifier: Notifier | None = None,
        *,
        now: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        watch_seconds: float = WATCH_SECONDS,
    ):
        self.settings = settings
        self.watcher = ConfigWatcher(settings.sources_path, config)
        #: Where each route's digests go; ``destination``, when given, takes every route.
        self.destinations: Callable[[Route], Destination] = (
            (lambda route: destination) if destination is not None else self._files
        )
        self.notifier: Notifier = notifier or LogNotifier()
        self.now = now
        self.retry = retry or RetryPolicy()
        self.sleep = sleep if sleep is not None else self._sleep
        self.watch_seconds = watch_seconds
        self._stop = threading.Event()
        self._embedder: Embedder | None = None
        self.jobs: Worker[Tracker] = Worker("jobs", self._open_tracker, _close_tracker)
        self.queries: Worker[Tracker] = Worker("queries", self._open_tracker, _close_tracker)
        self.outbox: Worker[SQLiteStateStore] = Worker(
            "outbox", lambda: SQLiteStateStore(settings.state_db), SQLiteStateStore.close
        )
        self.digests = DigestJobs(
            lambda: self.config,
            self.jobs,
            self.outbox,
            lambda route: self.destinations(route),
            now=now,
            retry=self.retry,
            sleep=self.sleep,
            stop=self._stop,
            spawn=self._spawn,
            pause=self._sleep,
        )
        self.scheduler = Scheduler(collect=self.collect_job, digest=self.digests.digest_job)
        self._file_destinations: dict[tuple[str | None, str], FileDestination] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = asyncio.Event()
        self._scheduling = False
        self._stopping = asyncio.Event()
        self._watch_error: str | None = None
        self._reload_lock = asyncio.Lock()

    # --- the pieces --------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The last good configuration: an invalid edit of sources.yaml never replaces it."""
        return self.watcher.current

    def _files(self, route: Route) -> FileDestination:
        """Without Discord: ``digests/`` for the one default route, ``digests/<file>/`` for
        each named route, dated in the route's time zone."""
        key = (route.file, route.timezone)
        if key not in self._file_destinations:
            folder = self.settings.digests_path
            if route.file is not None:
                folder = folder / route.file
            self._file_destinations[key] = FileDestination(folder, ZoneInfo(route.timezone))
        return self._file_destinations[key]

    def _open_tracker(self) -> Tracker:
        tracker = Tracker(self.settings, SQLiteStateStore(self.settings.state_db), self._embedder)
        return tracker

    async def embedder(self) -> Embedder:
        """The embedding model, loaded once (on the jobs thread) and shared by both sides."""
        if self._embedder is None:
            self._embedder = await self.jobs.run(lambda t: t.embedder)
        return self._embedder

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Begin in the background and return at once: catch up on collection, then
        schedule every source for when it is next due, then catch up on a missed digest;
        meanwhile watch sources.yaml."""
        self._spawn(self._catch_up())
        await self.start_watching()

    async def start_watching(self) -> None:
        """Poll sources.yaml every ``watch_seconds`` in the background."""
        self._spawn(self._watch())

    async def _catch_up(self) -> None:
        try:
            await self.embedder()  # load the model once, before the first question needs it
            await self.collect_all()
        except Stopping:
            return
        except Exception:  # whatever went wrong, the schedule must still run
            log.exception("catching up at start failed; the schedule takes over")
        if self._stop.is_set():
            return
        try:
            await self.schedule()
        except Exception:
            log.exception("scheduling failed; tracker serve cannot run without it")
            raise
        await self.digests.all_digests()
        log.info("caught up: what was due is collected, and every digest due is delivered")
        self.started.set()

    async def schedule(self, paused: bool = False) -> None:
        """Plan every source's job for when it is next due, and the digest's; from now on
        edits of sources.yaml change the jobs. ``paused`` plans without running (tests)."""
        due = await self.jobs.run(lambda t: self._next_due(t, self.config))
        self.scheduler.apply(self.config, due)
        self.scheduler.start(paused=paused)
        self._scheduling = True
        log.info("scheduled %d sources and the digest", len(self.scheduler.job_ids()) - 1)

    def _next_due(self, tracker: Tracker, config: Config) -> dict[str, datetime]:
        """When each source is next due: its last success plus its interval, or its retry
        time while it backs off. A restart does not collect everything again at once."""
        states = tracker.state.source_states()
        due: dict[str, datetime] = {}
        for source in config.sources:
            state = states.get(source.name)
            if state is None:
                continue  # never collected: at once
            if state.next_attempt_after is not None and state.consecutive_failures:
                due[source.name] = state.next_attempt_after
            elif state.last_success is not None:
                interval = source.interval or kind_of(source.kind).interval
                due[source.name] = state.last_success + interval
        return due

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, Stopping):
                log.error("background task failed", exc_info=exc)

    async def stop(self, grace: float = 60.0) -> None:
        """Stop scheduling, let the job in progress reach a safe point, release stores.

        A digest being posted stops between two messages (never between Discord
        accepting one and the outbox recording it); a collect stops after the source
        in hand; both resume from there on the next start.
        """
        if self._stop.is_set():
            return  # stopped already (serve stops it before closing the bot, then again)
        self._stop.set()
        self._stopping.set()
        try:
            async with asyncio.timeout(grace):
                async with self.digests.lock:
                    pass
        except TimeoutError:
            log.warning("the digest did not reach a safe point within %.0f s", grace)
        self.scheduler.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in (self.jobs, self.queries, self.outbox):
            await asyncio.to_thread(worker.shutdown)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    def _check_stop(self, *_: object) -> None:
        if self._stop.is_set():
            raise Stopping()

    # --- collecting ----------------------------------------------------------------------

    async def collect_all(self) -> CollectRun:
        """Every enabled source that is due (not collected within its interval) and not
        backing off, then processing: what a start-up does before the schedule takes over."""
        return await self._collect(names=(), due_only=True)

    async def collect_job(self, name: str) -> None:
        """The scheduled job of one source. It never raises: a failure is logged and the
        next run comes at the next interval."""
        config = self.config
        if self._stop.is_set() or not any(s.name == name and s.enabled for s in config.sources):
            return  # stopping, or removed or disabled since the job was planned
        try:
            await self._collect(names=(name,), due_only=False)
        except (Stopping, asyncio.CancelledError):
            return  # shutting down: the source is collected again on the next start
        except Exception:
            log.exception("collecting %s failed", name)

    async def _collect(self, names: Sequence[str], due_only: bool) -> CollectRun:
        config = self.config
        try:
            run = await self.jobs.run(lambda t: self._collect_blocking(t, config, names, due_only))
        except Stopping:
            raise
        except TrackerError as exc:
            log.error("collecting failed: %s", exc)
            return CollectRun((), 0, ())
        for result in run.results:
            if result.status is Status.ERROR and not result.backing_off:
                log.info("source %s failed: %s", result.source, result.error)
        new = sum(r.new for r in run.results)
        if run.results:
            log.info(
                "collected %d sources: %d new items, %d new stories",
                len(run.results),
                new,
                run.new_stories,
            )
        for change in run.health:
            log.warning("%s", change.plain)
            if await self.notifier.announce(change.markdown) is False:
                continue  # not said: not recorded, so the next collect of it says it again
            await self.jobs.run(_notice_recorder(change, self.now()))
        return run

    def _collect_blocking(
        self, tracker: Tracker, config: Config, names: Sequence[str], due_only: bool
    ) -> CollectRun:
        now = self.now()
        state = tracker.state
        if names:
            # A scheduled source respects its backoff: the job fires at its interval, and a
            # failing source waits for its retry time instead.
            current = state.source_state(names[0])
            if current is not None and current.backing_off(now):
                return CollectRun((), 0, ())
        results = collect(
            config,
            self.settings,
            state,
            names=names,
            due_only=due_only,
            now=self.now,
            on_result=self._check_stop,
            stopping=self._stop.is_set,
        )
        report = tracker.process(now=self.now, on_progress=self._check_stop)
        said = NoticeStore(state).keys()
        changes = health_changes(state.source_states(), [r.source for r in results], said)
        return CollectRun(tuple(results), report.new_stories, tuple(changes))

    # --- sources.yaml ------------------------------------------------------------------

    async def _watch(self) -> None:
        while not self._stop.is_set():
            await self._sleep(self.watch_seconds)
            if self._stop.is_set():
                return
            try:
                # The loop's timers stand still while a laptop sleeps: nudge the scheduler
                # so that jobs missed meanwhile run within one poll of waking.
                if self._scheduling:
                    self.scheduler.wakeup()
                await self.reload()
                self._watch_error = None
            except Exception as exc:  # never let the watcher die: say it once, keep going
                if str(exc) != self._watch_error:
                    log.exception("checking %s failed", self.settings.sources_path)
                self._watch_error = str(exc)

    async def reload(self) -> None:
        """Apply an edit of sources.yaml: jobs added, removed or rescheduled; an invalid
        edit keeps the last good configuration and is reported once."""
        async with self._reload_lock:  # the watcher and /sources add may both ask at once
            await self._reload()

    async def _reload(self) -> None:
        event = await asyncio.to_thread(self.watcher.check)
        if event is None:
            return
        if event.error is not None:
            if event.first_report:
                self._report_config_error(event.error)
            return
        assert event.config is not None
        if not self._scheduling:
            return  # the start-up catch-up schedules from the latest config when it is done
        changes = self.scheduler.apply(event.config)
        for job_id in changes.added:
            route = route_of(job_id)
            if route is not None:
                self._spawn(self.digests.first_digest(route))
        log.info(
            "sources.yaml reloaded: %d added, %d removed, %d rescheduled",
            len(changes.added),
            len(changes.removed),
            len(changes.rescheduled),
        )

    def _report_config_error(self, error: ConfigError) -> None:
        text = (
            f"{self.settings.sources_path} has an error; the last good configuration keeps "
            f"running until it is fixed:\n{error}"
        )
        log.error("%s", text)
        self._spawn(self._announce(_code_block(text)))

    async def _announce(self, text: str) -> None:
        await self.notifier.announce(text)


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} min"


def _notice_recorder(change: HealthChange, now: datetime) -> Callable[[Tracker], None]:
    """Remember that ``change`` was announced, so it is not announced again."""

    def record(tracker: Tracker) -> None:
        notices = NoticeStore(tracker.state)
        if change.failing:
            notices.add(change.notice_key, now)
        else:
            notices.remove(change.notice_key)

    return record


def _close_tracker(tracker: Tracker) -> None:
    tracker.state.close()


def _code_block(text: str) -> str:
    body = text.replace("```", "'''")[:1800]
    return f"⚠️ sources.yaml\n```\n{body}\n```"
