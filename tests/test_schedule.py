"""The job plan follows sources.yaml, edits touch only what changed, and a missed digest goes once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracker.config import parse_config
from tracker.config.digest import DigestSettings
from tracker.config.kinds import kind_of
from tracker.runtime.schedule import (
    Changes,
    DigestTrigger,
    JobPlan,
    Scheduler,
    digest_due,
    last_fire_time,
    plan_jobs,
)

BERLIN = ZoneInfo("Europe/Berlin")
DIGEST_ONLY = 'digest: {time: "08:00", timezone: Europe/Berlin}\nsources: []\n'

SOURCES = """\
digest:
  time: "08:00"
  timezone: Europe/Berlin
sources:
  - {name: papers, kind: arxiv, query: "cat:cs.CL"}
  - {name: blog, kind: feed, url: "https://blog.example/feed.xml", interval: 30m}
  - {name: vllm, kind: github_releases, repo: vllm-project/vllm}
  - {name: paused, kind: feed, url: "https://paused.example/feed.xml", enabled: false}
"""

EDITED = """\
digest:
  time: "08:00"
  timezone: Europe/Berlin
sources:
  - {name: papers, kind: arxiv, query: "cat:cs.CL"}
  - {name: blog, kind: feed, url: "https://blog.example/feed.xml", interval: 2h}
  - {name: news, kind: feed, url: "https://news.example/feed.xml"}
  - {name: paused, kind: feed, url: "https://paused.example/feed.xml", enabled: false}
"""


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async test body in a fresh loop: APScheduler's asyncio scheduler needs one running."""
    return asyncio.run(main())  # type: ignore[arg-type]


async def nothing(*args: object) -> None:
    pass


async def until(event: asyncio.Event) -> None:
    """Wait for the scheduler to do something; the timeout only stops a broken test hanging."""
    await asyncio.wait_for(event.wait(), timeout=5)


async def stopped(scheduler: Scheduler) -> None:
    scheduler.shutdown()
    await asyncio.sleep(0)  # AsyncIOScheduler stops on the loop's next turn


class RecordingExecutor(BaseExecutor):
    """Records what the scheduler submits instead of running it."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[tuple[str, list[datetime]]] = []
        self.changed = asyncio.Event()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        self.submitted.append((job.id, list(run_times)))
        self.changed.set()


# --- the plan -------------------------------------------------------------------------


def test_one_collect_job_per_enabled_source_plus_the_digest():
    plans = plan_jobs(parse_config(SOURCES))

    assert sorted(plans) == ["collect:blog", "collect:papers", "collect:vllm", "digest:digest"]
    assert "collect:paused" not in plans


def test_a_source_without_interval_gets_its_kinds_default():
    plans = plan_jobs(parse_config(SOURCES))

    assert plans["collect:papers"] == JobPlan.every(timedelta(hours=6))
    assert plans["collect:vllm"] == JobPlan.every(timedelta(hours=6))
    assert plans["collect:blog"] == JobPlan.every(timedelta(minutes=30))
    assert kind_of("arxiv").interval == timedelta(hours=6)
    assert kind_of("feed").interval == timedelta(hours=1)
    assert kind_of("github_releases").interval == timedelta(hours=6)


def test_the_digest_is_planned_daily_at_its_local_time():
    plans = plan_jobs(parse_config(SOURCES))

    assert plans["digest:digest"] == JobPlan("daily", hour=8, minute=0, timezone="Europe/Berlin")


def test_plans_compare_equal_when_only_non_schedule_settings_change():
    before = plan_jobs(parse_config(SOURCES))
    after = plan_jobs(parse_config(SOURCES.replace('time: "08:00"', 'time: "08:00"\n  size: 3')))

    assert before == after


# --- the digest's clock -------------------------------------------------------------------


def test_the_digest_fires_at_local_time_on_both_sides_of_the_spring_change():
    trigger = DigestTrigger(time(8, 0), BERLIN)

    saturday = trigger.get_next_fire_time(None, berlin(2026, 3, 28, 7, 0))
    sunday = trigger.get_next_fire_time(saturday, saturday)

    assert saturday == berlin(2026, 3, 28, 8, 0)
    assert saturday.astimezone(UTC).hour == 7  # CET, UTC+1
    assert sunday.astimezone(BERLIN).time() == time(8, 0)
    assert sunday.astimezone(UTC).hour == 6  # CEST, UTC+2
    assert sunday.timestamp() - saturday.timestamp() == 23 * 3600


def test_a_time_the_clocks_repeat_fires_once_that_night():
    trigger = DigestTrigger(time(2, 30), BERLIN)

    first = trigger.get_next_fire_time(None, berlin(2026, 10, 24, 12, 0))
    second = trigger.get_next_fire_time(first, first)

    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert second.astimezone(BERLIN).date().isoformat() == "2026-10-26"


def test_a_time_the_clocks_skip_fires_just_after_the_gap():
    trigger = DigestTrigger(time(2, 30), BERLIN)

    fire = trigger.get_next_fire_time(None, berlin(2026, 3, 28, 12, 0))

    assert fire.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert fire.astimezone(BERLIN).time() == time(3, 30)


def test_last_fire_time_is_today_once_the_time_has_passed_else_yesterday():
    digest = DigestSettings(time="08:00", timezone="Europe/Berlin")

    assert last_fire_time(berlin(2026, 6, 10, 9, 0), digest) == datetime(
        2026, 6, 10, 6, 0, tzinfo=UTC
    )
    assert last_fire_time(berlin(2026, 6, 10, 7, 59), digest) == datetime(
        2026, 6, 9, 6, 0, tzinfo=UTC
    )
    assert last_fire_time(berlin(2026, 6, 10, 8, 0), digest) == datetime(
        2026, 6, 10, 6, 0, tzinfo=UTC
    )


DIGEST = DigestSettings(time="08:00", timezone="Europe/Berlin")


def test_never_sent_is_due_once_todays_time_has_passed():
    assert digest_due(None, berlin(2026, 6, 10, 9, 0), DIGEST)
    assert not digest_due(None, berlin(2026, 6, 10, 7, 0), DIGEST)


def test_sent_today_after_the_time_is_not_due():
    sent = berlin(2026, 6, 10, 8, 0, 12)

    assert not digest_due(sent, berlin(2026, 6, 10, 21, 0), DIGEST)
    assert not digest_due(sent, berlin(2026, 6, 11, 7, 59), DIGEST)
    assert digest_due(sent, berlin(2026, 6, 11, 8, 0), DIGEST)


def test_a_laptop_asleep_for_two_days_owes_one_digest():
    sent = berlin(2026, 6, 8, 8, 1)
    woke = berlin(2026, 6, 10, 13, 0)

    assert digest_due(sent, woke, DIGEST)
    # Posting it settles the whole backlog, not just one of the missed days.
    assert not digest_due(woke + timedelta(minutes=1), woke + timedelta(minutes=2), DIGEST)


def test_catch_up_is_dst_safe():
    # Sent Saturday 08:00 CET; Sunday's 08:00 CEST is 23 hours later, not 24.
    sent = berlin(2026, 3, 28, 8, 0)

    assert not digest_due(sent, berlin(2026, 3, 29, 7, 59), DIGEST)
    assert digest_due(sent, berlin(2026, 3, 29, 8, 0), DIGEST)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        digest_due(None, datetime(2026, 6, 10, 9, 0), DIGEST)


# --- the scheduler ------------------------------------------------------------------------


def test_jobs_are_created_from_sources_yaml():
    async def main() -> None:
        scheduler = Scheduler(nothing, nothing)
        changes = scheduler.apply(parse_config(SOURCES))
        scheduler.start(paused=True)

        assert changes == Changes(
            added=("collect:blog", "collect:papers", "collect:vllm", "digest:digest")
        )
        assert scheduler.job_ids() == [
            "collect:blog",
            "collect:papers",
            "collect:vllm",
            "digest:digest",
        ]
        await stopped(scheduler)

    run(main)


def test_jobs_never_overlap_and_coalesce_missed_runs():
    async def main() -> None:
        inner = AsyncIOScheduler()
        scheduler = Scheduler(nothing, nothing, scheduler=inner)
        scheduler.apply(parse_config(SOURCES))
        scheduler.start(paused=True)

        for job in inner.get_jobs():
            assert job.coalesce is True
            assert job.max_instances == 1
        assert inner.get_job("digest:digest").misfire_grace_time == 12 * 3600
        assert inner.get_job("collect:blog").misfire_grace_time is None  # late is better than never
        await stopped(scheduler)

    run(main)


def test_a_new_collect_job_runs_at_once_and_the_digest_at_its_next_time():
    async def main() -> None:
        scheduler = Scheduler(nothing, nothing)
        before = datetime.now(UTC)
        scheduler.apply(parse_config(SOURCES))
        scheduler.start(paused=True)
        after = datetime.now(UTC)
        times = scheduler.next_run_times()

        assert before <= times["collect:papers"] <= after
        digest = times["digest:digest"].astimezone(BERLIN)
        assert digest.time() == time(8, 0)
        assert before < digest <= after + timedelta(days=1)
        await stopped(scheduler)

    run(main)


def test_an_edit_adds_removes_and_reschedules_exactly_what_changed():
    async def main() -> None:
        scheduler = Scheduler(nothing, nothing)
        scheduler.apply(parse_config(SOURCES))
        scheduler.start(paused=True)
        before = scheduler.next_run_times()

        start = datetime.now(UTC)
        changes = scheduler.apply(parse_config(EDITED))
        end = datetime.now(UTC)
        after = scheduler.next_run_times()

        assert changes == Changes(
            added=("collect:news",), removed=("collect:vllm",), rescheduled=("collect:blog",)
        )
        assert scheduler.job_ids() == [
            "collect:blog",
            "collect:news",
            "collect:papers",
            "digest:digest",
        ]
        assert after["collect:papers"] == before["collect:papers"]
        assert after["digest:digest"] == before["digest:digest"]
        assert start + timedelta(hours=2) <= after["collect:blog"] <= end + timedelta(hours=2)
        assert start <= after["collect:news"] <= end
        await stopped(scheduler)

    run(main)


def test_applying_the_same_config_again_changes_nothing():
    async def main() -> None:
        scheduler = Scheduler(nothing, nothing)
        scheduler.apply(parse_config(SOURCES))
        scheduler.start(paused=True)
        before = scheduler.next_run_times()

        changes = scheduler.apply(parse_config(SOURCES))

        assert not changes
        assert str(changes) == "no changes"
        assert scheduler.next_run_times() == before
        await stopped(scheduler)

    run(main)


def test_disabling_a_source_removes_its_job():
    async def main() -> None:
        scheduler = Scheduler(nothing, nothing)
        scheduler.apply(parse_config(SOURCES))
        scheduler.start(paused=True)

        changes = scheduler.apply(
            parse_config(
                SOURCES.replace(
                    "repo: vllm-project/vllm}", "repo: vllm-project/vllm, enabled: false}"
                )
            )
        )

        assert changes.removed == ("collect:vllm",)
        assert "collect:vllm" not in scheduler.job_ids()
        await stopped(scheduler)

    run(main)


def test_moving_the_digest_time_reschedules_it():
    async def main() -> None:
        scheduler = Scheduler(nothing, nothing)
        scheduler.apply(parse_config(SOURCES))
        scheduler.start(paused=True)

        changes = scheduler.apply(parse_config(SOURCES.replace('"08:00"', '"18:30"')))

        assert changes.rescheduled == ("digest:digest",)
        assert scheduler.next_run_times()["digest:digest"].astimezone(BERLIN).time() == time(18, 30)
        await stopped(scheduler)

    run(main)


def test_a_restart_can_start_each_source_when_it_is_next_due():
    async def main() -> None:
        scheduler = Scheduler(nothing, nothing)
        now = datetime.now(UTC)
        due = {"blog": now + timedelta(minutes=20), "papers": now - timedelta(hours=3)}
        scheduler.apply(parse_config(SOURCES), first_runs=due)
        scheduler.start(paused=True)
        times = scheduler.next_run_times()

        assert times["collect:blog"] == now + timedelta(minutes=20)
        assert now <= times["collect:papers"] <= datetime.now(UTC)  # overdue: at once
        assert now <= times["collect:vllm"] <= datetime.now(UTC)  # unknown: at once
        await stopped(scheduler)

    run(main)


def test_an_edit_before_start_keeps_a_new_sources_first_run():
    scheduler = Scheduler(nothing, nothing)
    before = datetime.now(UTC)
    scheduler.apply(parse_config(SOURCES))

    changes = scheduler.apply(parse_config(EDITED))

    assert changes.rescheduled == ("collect:blog",)
    assert scheduler.next_run_times()["collect:blog"] <= datetime.now(UTC)
    assert scheduler.next_run_times()["collect:blog"] >= before


def test_every_source_is_collected_at_start_up_even_when_one_fails():
    many = "sources:\n" + "".join(
        f'  - {{name: s{n}, kind: feed, url: "https://s{n}.example/feed.xml"}}\n' for n in range(20)
    )

    async def main() -> list[str]:
        collected: list[str] = []
        done = asyncio.Event()

        async def collect(name: str) -> None:
            collected.append(name)
            if len(collected) == 20:
                done.set()
            if name == "s3":
                raise RuntimeError("the feed is down")

        scheduler = Scheduler(collect, nothing)
        scheduler.apply(parse_config(many))
        scheduler.start()
        await until(done)
        await stopped(scheduler)
        return collected

    assert sorted(run(main)) == sorted(f"s{n}" for n in range(20))


def test_a_digest_eleven_hours_late_still_runs_within_the_grace():
    async def main() -> int:
        sent = asyncio.Event()
        calls = 0

        async def digest(route: str) -> None:
            nonlocal calls
            calls += 1
            sent.set()

        inner = AsyncIOScheduler()
        scheduler = Scheduler(nothing, digest, scheduler=inner)
        scheduler.apply(parse_config(DIGEST_ONLY))
        scheduler.start()
        # As if the machine slept through the digest time: it is due 11 hours ago.
        inner.modify_job("digest:digest", next_run_time=datetime.now(UTC) - timedelta(hours=11))
        await until(sent)
        await stopped(scheduler)
        return calls

    assert run(main) == 1


def test_runs_missed_over_several_days_are_submitted_once():
    async def main() -> tuple[list[tuple[str, list[datetime]]], datetime, datetime, datetime]:
        executor = RecordingExecutor()
        inner = AsyncIOScheduler(executors={"default": executor})
        scheduler = Scheduler(nothing, nothing, scheduler=inner)
        scheduler.apply(parse_config(DIGEST_ONLY))
        scheduler.start()
        before = datetime.now(UTC)
        # As if the process had been suspended for three days.
        inner.modify_job("digest:digest", next_run_time=before - timedelta(days=3))
        await until(executor.changed)
        after = datetime.now(UTC)
        return executor.submitted, before, after, inner.get_job("digest:digest").next_run_time

    submitted, before, after, next_run = run(main)

    assert len(submitted) == 1
    job_id, run_times = submitted[0]
    assert job_id == "digest:digest"
    assert len(run_times) == 1  # three missed mornings, one run: the latest of them
    assert run_times[0] in (last_fire_time(before, DIGEST), last_fire_time(after, DIGEST))
    assert next_run > after  # nothing left over to run again


def test_shutdown_is_safe_before_start():
    scheduler = Scheduler(nothing, nothing)

    scheduler.shutdown()
    scheduler.wakeup()

    assert scheduler.job_ids() == []
