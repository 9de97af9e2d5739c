"""Collecting many sources at once: concurrent, polite, and one failure never stops the rest.

Fetching and parsing happen in worker threads; every write to the state store
happens on the calling thread, one transaction per source, as each finishes.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime

from storage.state import SourceState, SQLiteStateStore
from tracker.collect.backoff import BackoffPolicy
from tracker.collect.http import HttpClient
from tracker.collect.pages import HostBook
from tracker.collect.sources import CollectContext, Collector, collector_for
from tracker.config import Config
from tracker.config.kinds import SourceSettings, kind_of
from tracker.errors import ConfigError, ConfigProblem, SourceError, StorageError
from tracker.models import Fetched, SourceResult, Status, Validators
from tracker.settings import Settings
from tracker.times import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Which sources a run collects, and which it skips and why."""

    run: list[SourceSettings]
    skipped: list[SourceResult]


def plan(
    config: Config,
    store: SQLiteStateStore,
    now: datetime,
    names: Sequence[str] = (),
    force: bool = False,
    due_only: bool = False,
) -> Plan:
    """Choose the sources to collect.

    Named sources are collected even when disabled or backing off: asking for
    one by name is asking to try it now. Otherwise disabled sources are left
    out, and backing-off ones are not tried but reported as errors with the reason.
    """
    if names:
        known = {s.name: s for s in config.sources}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(
                [
                    ConfigProblem(
                        "sources.yaml",
                        None,
                        None,
                        f"there is no source named {name!r}",
                        f"use one of: {', '.join(sorted(known)) or '(none defined)'}",
                    )
                    for name in missing
                ]
            )
        return Plan([known[n] for n in dict.fromkeys(names)], [])
    run: list[SourceSettings] = []
    skipped: list[SourceResult] = []
    for source in config.sources:
        if not source.enabled:
            continue
        state = store.source_state(source.name)
        if state and not force and state.backing_off(now) and state.next_attempt_after:
            # Not tried, but still failing: reported as an error so that a cron job
            # chaining on the exit code does not take a dead source for a healthy one.
            skipped.append(
                SourceResult(
                    source.name,
                    source.kind,
                    Status.ERROR,
                    error=(
                        f"still failing after {_attempts(state.consecutive_failures)} "
                        f"(last error: {state.last_error}); not tried again before "
                        f"{state.next_attempt_after:%Y-%m-%d %H:%M} UTC, --force tries now"
                    ),
                    backing_off=True,
                    retry_after=state.next_attempt_after,
                )
            )
            continue
        not_due = (
            due_only
            and state
            and state.last_success
            and source.interval
            and now < state.last_success + source.interval
        )
        if not_due:
            continue
        run.append(source)
    return Plan(run, skipped)


def collect(
    config: Config,
    settings: Settings,
    store: SQLiteStateStore,
    names: Sequence[str] = (),
    force: bool = False,
    due_only: bool = False,
    now: Callable[[], datetime] = utcnow,
    http: HttpClient | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[SourceResult], None] | None = None,
    backoff: BackoffPolicy | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> list[SourceResult]:
    """Collect the planned sources; one result per source, in sources.yaml order."""
    chosen = plan(config, store, now(), names, force, due_only)
    if on_start:
        on_start(len(chosen.run) + len(chosen.skipped))
    results: dict[str, SourceResult] = {}
    for skipped in chosen.skipped:
        results[skipped.source] = skipped
        if on_result:
            on_result(skipped)
    owns_http = http is None
    client = http or HttpClient(settings)
    hosts = HostBook(now, store.host_waits(now()), pages_per_host=settings.max_pages)
    try:
        for result in _run(
            chosen.run,
            settings,
            store,
            client,
            hosts,
            backoff or BackoffPolicy(),
            stopping,
        ):
            results[result.source] = result
            if on_result:
                on_result(result)
    finally:
        if owns_http:
            client.close()
    order = [s.name for s in config.sources]
    return sorted(results.values(), key=lambda r: order.index(r.source) if r.source in order else 0)


def _run(
    sources: list[SourceSettings],
    settings: Settings,
    store: SQLiteStateStore,
    http: HttpClient,
    hosts: HostBook,
    backoff: BackoffPolicy,
    stopping: Callable[[], bool],
) -> Iterator[SourceResult]:
    if not sources:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="collect")
    try:
        futures: dict[Future[tuple[Fetched, float]], tuple[SourceSettings, SourceState | None]] = {}
        states = {source.name: store.source_state(source.name) for source in sources}
        contexts = [
            _context(source, states[source.name], settings, store, http, hosts, stopping)
            for source in sources
        ]
        for source, ctx in zip(sources, contexts, strict=True):
            future = pool.submit(_fetch, collector_for(source.kind), source, ctx)
            futures[future] = (source, states[source.name])
        for future in as_completed(futures):
            source, state = futures[future]
            result = _record(source, state, future, store, hosts.now(), backoff)
            store.save_host_waits(*hosts.changes(), hosts.now())
            yield result
    except BaseException:
        # Ctrl-C (or a store that stopped working): drop the queued sources instead of
        # waiting for all of them. What was saved stays saved; requests in flight end
        # at their timeout.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _context(
    source: SourceSettings,
    state: SourceState | None,
    settings: Settings,
    store: SQLiteStateStore,
    http: HttpClient,
    hosts: HostBook,
    stopping: Callable[[], bool],
) -> CollectContext:
    """What the source's collector is given. The pages already due are announced to the
    host book before any source starts, so that a host's page budget is shared among
    all the sources waiting on it, not taken by whichever starts first."""
    pages = store.page_tasks(source.name)
    now = hosts.now()
    due = [t for t in pages.values() if t.due(now)]
    hosts.want(source.name, Counter(t.host for t in due))
    return CollectContext(
        http=http,
        validators=state.validators_for(endpoint(source)) if state else Validators(),
        known=store.fingerprints(source.name),
        github_token=settings.github_token,
        max_pages=settings.max_pages,
        stopping=stopping,
        hosts=hosts,
        pages=pages,
        queued=store.items_by_id(source.name, [t.item_id for t in due]),
        teaser_hashes=store.teaser_hashes(source.name),
    )


def moved_note(url: str) -> str:
    """What to tell a person whose source's URL has moved for good."""
    return (
        f"the feed has moved permanently to {url} (301/308): write  url: {url}  "
        "in sources.yaml (the redirect is followed meanwhile)"
    )


def _attempts(count: int) -> str:
    return "1 failed attempt" if count == 1 else f"{count} failed attempts"


def endpoint(source: SourceSettings) -> str:
    """What a source fetches, as far as its configuration says: validators saved for one
    endpoint are not sent to another after the user edits the source."""
    fields = {"kind", "url", *kind_of(source.kind).endpoint}
    return json.dumps(source.model_dump(mode="json", include=fields), sort_keys=True)


def _fetch(
    collector: Collector, source: SourceSettings, ctx: CollectContext
) -> tuple[Fetched, float]:
    started = time.perf_counter()
    try:
        fetched = collector.collect(source, ctx)
    finally:
        ctx.hosts.want(source.name, {})  # a source that failed leaves its share of pages
    return fetched, time.perf_counter() - started


def _record(
    source: SourceSettings,
    before: SourceState | None,
    future: Future[tuple[Fetched, float]],
    store: SQLiteStateStore,
    now: datetime,
    backoff: BackoffPolicy,
) -> SourceResult:
    not_before = None
    try:
        fetched, seconds = future.result()
    except SourceError as exc:
        message = str(exc)
        transient = exc.transient
        if exc.retry_after is not None:
            not_before = now + exc.retry_after
    except Exception as exc:  # a bug or a parser crash on hostile input: report, keep going
        log.info("collecting %s failed unexpectedly", source.name, exc_info=True)
        message = f"unexpected error ({type(exc).__name__}: {exc}); this is a bug, please report it"
        transient = True
    else:
        try:
            return _saved(source, before, fetched, seconds, store, now)
        except StorageError:
            raise  # the machine's (a full disk, a read-only home): every source would fail
        except Exception as exc:  # what this source sent broke the store: its failure only
            log.info("storing %s failed unexpectedly", source.name, exc_info=True)
            message = (
                f"what it sent could not be stored ({type(exc).__name__}: {exc}); nothing of "
                "it was kept; this is a bug, please report it"
            )
            transient = True
    state = store.save_failure(
        source.name,
        source.kind,
        message,
        now,
        lambda failures: backoff.retry_at(failures, now, transient, not_before),
    )
    return SourceResult(
        source.name, source.kind, Status.ERROR, error=message, retry_after=state.next_attempt_after
    )


def _saved(
    source: SourceSettings,
    before: SourceState | None,
    fetched: Fetched,
    seconds: float,
    store: SQLiteStateStore,
    now: datetime,
) -> SourceResult:
    """Store what a source fetched (in one transaction) and say how it went."""
    status = Status.NOT_MODIFIED if fetched.not_modified else Status.OK
    counts = store.save_success(
        source.name,
        source.kind,
        fetched.items,
        fetched.validators,
        status.value,
        now,
        endpoint(source),
        page_changes=fetched.page_changes,
        moved_to=fetched.moved_to,
    )
    warnings = fetched.warnings
    moved = fetched.moved_to if fetched.moved_to != (before and before.moved_to) else None
    if moved:
        # Said once, the run it is noticed; `tracker stats` keeps showing it.
        warnings = (moved_note(moved), *warnings)
    return SourceResult(
        source.name,
        source.kind,
        status,
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        warnings=warnings,
        seconds=seconds,
        pages_fetched=fetched.pages_fetched,
        pages_failed=fetched.pages_failed,
        pages_pending=store.pages_pending(source.name),
        moved_to=moved,
    )
