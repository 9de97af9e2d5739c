"""``tracker serve`` and its runtime: scheduled collection, the digest, live config, health.

The runtime runs for real here (real SQLite, Chroma, embedding model, HTTP on
loopback); only the clock and the destination are the test's.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import TRACKER_COMMAND, FeedServer, blog_feed
from tracker.config import load_config
from tracker.deliver.delivery import FileDestination, RetryPolicy
from tracker.models import Digest, Status
from tracker.runtime import Runtime
from tracker.runtime.local_services import LocalServices
from tracker.services import Outgoing
from tracker.settings import Settings


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Announcements:
    def __init__(self) -> None:
        self.texts: list[str] = []
        #: Announcements to fail (as Discord down would) before saying any.
        self.failures = 0

    async def announce(self, text: str) -> bool:
        if self.failures:
            self.failures -= 1
            return False
        self.texts.append(text)
        return True


class StandInChannel:
    """Accepts every message and gives it an id, as Discord would."""

    name = "discord:42"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def render(self, digest: Digest) -> list[Outgoing]:
        if digest.quiet:
            return [Outgoing({"content": "quiet"}, ())]
        return [Outgoing({"content": e.title}, (e.story_id,)) for e in digest.entries]

    async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
        self.sent.append(payload)
        return str(900_000_000_000_000_000 + len(self.sent))


async def no_sleep(seconds: float) -> None:
    return None


def runtime_for(
    settings: Settings, clock: Clock, destination: Any = None
) -> tuple[Runtime, Announcements]:
    notes = Announcements()
    runtime = Runtime(
        settings,
        load_config(settings.sources_path),
        destination,
        notes,
        now=clock,
        retry=RetryPolicy(attempts=2),
        sleep=no_sleep,
    )
    return runtime, notes


@pytest.fixture
def serve_settings(world: FeedServer, tracker_home: Path) -> Settings:
    return Settings.from_env()


# Monday morning, after the digest time of the world's sources.yaml (08:00 UTC by default).
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_day_of_serving_collects_posts_one_digest_and_is_quiet_until_the_next_day(
    serve_settings: Settings,
):
    clock = Clock(MONDAY)
    out = io.StringIO()
    destination = FileDestination(serve_settings.digests_path, ZoneInfo("UTC"), out)
    runtime, notes = runtime_for(serve_settings, clock, destination)

    async def day() -> list[Any]:
        try:
            run = await runtime.collect_all()
            first = await runtime.digests.digest_job()
            again = await runtime.digests.digest_job()  # a coalesced misfire, or a second process
            clock.now = MONDAY + timedelta(days=1)
            tomorrow = await runtime.digests.digest_job()
            return [run, first, again, tomorrow]
        finally:
            await runtime.stop()

    run, first, again, tomorrow = asyncio.run(day())

    assert {r.source for r in run.results} == {"papers", "blog", "infer"}
    assert first is not None and first.complete
    assert again is None
    assert tomorrow is not None and tomorrow.complete
    files = sorted(p.name for p in serve_settings.digests_path.iterdir())
    assert files == ["2026-11-23.md", "2026-11-24.md"]
    monday = (serve_settings.digests_path / "2026-11-23.md").read_text(encoding="utf-8")
    assert "Faster Decoding with Draft Models" in monday
    assert "quiet" in (serve_settings.digests_path / "2026-11-24.md").read_text(encoding="utf-8")
    assert "Faster Decoding with Draft Models" in out.getvalue()
    assert notes.texts == []


def test_an_invalid_edit_keeps_the_running_config_and_is_reported_once(serve_settings: Settings):
    clock = Clock(MONDAY)
    runtime, notes = runtime_for(serve_settings, clock)
    path = serve_settings.sources_path
    good = path.read_text(encoding="utf-8")

    async def edits() -> tuple[set[str], set[str], set[str]]:
        await runtime.schedule(paused=True)
        before = set(runtime.scheduler.job_ids())
        path.write_text(good + "  - {name: broken, kind: feed}\n", encoding="utf-8")
        await runtime.reload()
        await runtime.reload()  # still broken: not reported again
        during = set(runtime.scheduler.job_ids())
        path.write_text(good.replace("name: blog,", "name: weblog,"), encoding="utf-8")
        await runtime.reload()
        after = set(runtime.scheduler.job_ids())
        await runtime.stop()
        return before, during, after

    before, during, after = asyncio.run(edits())

    assert "collect:blog" in before and before == during
    assert "collect:weblog" in after and "collect:blog" not in after
    assert runtime.config.source("weblog")
    (note,) = notes.texts
    assert "url" in note and "last good configuration" in note


def test_a_failing_source_is_announced_once_and_its_recovery_once(
    serve_settings: Settings, world: FeedServer
):
    clock = Clock(MONDAY)
    runtime, notes = runtime_for(serve_settings, clock)
    world.add("/blog.xml", b"oops", status=503)

    async def failing() -> None:
        try:
            for _ in range(4):
                await runtime.collect_job("blog")
                clock.now += timedelta(days=2)  # past any backoff
            world.add("/blog.xml", b"<rss version='2.0'><channel><title>t</title></channel></rss>")
            await runtime.collect_job("blog")
            await runtime.collect_job("blog")
        finally:
            await runtime.stop()

    asyncio.run(failing())

    failing_notes = [t for t in notes.texts if "is failing" in t]
    recovered = [t for t in notes.texts if "working again" in t]
    assert len(failing_notes) == 1 and "503" in failing_notes[0]
    assert len(recovered) == 1


def test_an_announcement_that_could_not_be_made_is_made_at_the_next_collect(
    serve_settings: Settings, world: FeedServer
):
    clock = Clock(MONDAY)
    runtime, notes = runtime_for(serve_settings, clock)
    world.add("/blog.xml", b"oops", status=503)
    notes.failures = 1

    async def failing() -> None:
        try:
            for _ in range(4):
                await runtime.collect_job("blog")
                clock.now += timedelta(days=2)  # past any backoff
        finally:
            await runtime.stop()

    asyncio.run(failing())

    assert len(notes.texts) == 1 and "is failing" in notes.texts[0]


def test_the_bots_services_answer_from_what_serve_collected(serve_settings: Settings):
    clock = Clock(MONDAY)
    channel = StandInChannel()
    runtime, _ = runtime_for(serve_settings, clock, channel)
    services = LocalServices(runtime)

    async def use() -> dict[str, Any]:
        try:
            await runtime.collect_all()
            await runtime.digests.digest_job()
            answer = await services.ask(
                "How does speculative decoding speed up models?", None, None
            )
            hits = await services.search("draft model decoding")
            health = await services.sources()
            paper_message = next(
                i for i, p in enumerate(channel.sent, 1) if "Draft Models" in p["content"]
            )
            message_id = 900_000_000_000_000_000 + paper_message
            voted = await services.feedback(message_id, 7, 1)
            not_ours = await services.feedback(123, 7, 1)
            await services.feedback(message_id, 8, -1)
            await services.feedback(message_id, 8, 1)  # changed their mind: 👍 now
            await services.feedback(message_id, 8, -1, added=False)  # and took the 👎 away
            why = await services.why_message(message_id)
            by_title = await services.why("faster decoding draft")
            choices = await services.story_choices("decoding")
            preview = await services.digest_preview(timedelta(days=30))
            return locals()
        finally:
            await runtime.stop()

    got = asyncio.run(use())

    assert any("arxiv.org/abs/2411.01234" in c.url for c in got["answer"].citations)
    assert got["hits"][0].title == "Faster Decoding with Draft Models"
    assert {h.name for h in got["health"]} == {"papers", "blog", "infer"}
    assert all(h.last_success is not None and not h.backing_off for h in got["health"])
    assert got["voted"] is True and got["not_ours"] is False
    (why,) = got["why"]
    assert why.title == "Faster Decoding with Draft Models"
    assert why.feedback == {"up": 2, "down": 0}
    assert abs(sum(why.parts.values()) - why.score) < 1e-3
    assert got["by_title"].story_id == why.story_id
    assert any(title == why.title for title, _ in got["choices"])
    assert got["preview"].entries  # a preview of the last 30 days, though all were sent


# --- the real command, in its own process ----------------------------------------------------


def test_tracker_serve_without_a_token_writes_the_digest_file_and_stops_cleanly(
    world: FeedServer, tracker_home: Path, tmp_path: Path
):
    sources = Path(os.environ["TRACKER_SOURCES"])
    sources.write_text(
        sources.read_text(encoding="utf-8")
        # Hours before the digest's time: the first digest comes all the same, at once.
        + f'digest: {{time: "{datetime.now(UTC) + timedelta(hours=6):%H:%M}", timezone: UTC}}\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [TRACKER_COMMAND, "serve"]
    days = {f"{datetime.now(UTC):%Y-%m-%d}.md"}
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        digests = tracker_home / "digests"
        deadline = time.monotonic() + 180
        while not (digests.exists() and any(digests.glob("*.md"))):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "no digest file appeared"
            time.sleep(0.2)

        # A second serve on the same TRACKER_HOME refuses to start: no double posts.
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr and str(first.pid) in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)

    assert first.returncode == 0, err
    (path,) = digests.glob("*.md")
    days.add(f"{datetime.now(UTC):%Y-%m-%d}.md")
    assert path.name in days
    assert "Faster Decoding with Draft Models" in path.read_text(encoding="utf-8")
    assert "This was your first digest" in path.read_text(encoding="utf-8")
    assert "Faster Decoding with Draft Models" in out
    assert 'msg="stopped"' in err
    assert "Traceback" not in err


def test_a_source_added_from_discord_is_scheduled_and_collected_without_a_restart(
    serve_settings: Settings, world: FeedServer, monkeypatch: pytest.MonkeyPatch
):
    world.add("/more.xml", blog_feed(world).replace("Inference Notes", "More Notes"))
    clock = Clock(MONDAY)
    runtime, _ = runtime_for(serve_settings, clock)
    services = LocalServices(runtime, is_public=lambda host: True)  # the test server is loopback

    async def add() -> tuple[Any, set[str], list[Any], list[Any]]:
        try:
            await runtime.schedule(paused=True)
            change = await services.add_source(world.url("/more.xml"), None)
            jobs = set(runtime.scheduler.job_ids())
            # Added from Discord, the feed may never be fetched from inside the network:
            # the loopback test server is refused at collect time too, not only when added.
            await runtime.collect_job(change.name)
            refused = await services.sources()
            with monkeypatch.context() as m:
                # Loopback judged public from now on (the connection goes where it was judged).
                m.setattr("tracker.collect.http._public_text", lambda address: True)
                clock.now += timedelta(days=1)  # past the backoff
                await runtime.collect_job(change.name)
            return change, jobs, refused, await services.sources()
        finally:
            await runtime.stop()

    change, jobs, refused, health = asyncio.run(add())

    assert change.name == "more-notes" and "More Notes" in change.note
    assert f"collect:{change.name}" in jobs
    (blocked,) = [h for h in refused if h.name == change.name]
    assert "private or local address" in (blocked.last_error or "")
    (added,) = [h for h in health if h.name == change.name]
    assert added.last_success is not None and added.last_error is None
    assert "name: more-notes" in serve_settings.sources_path.read_text(encoding="utf-8")


def test_a_rejected_discord_token_is_a_configuration_error_that_never_shows_the_token(
    serve_settings: Settings, world: FeedServer, monkeypatch: pytest.MonkeyPatch
):
    import discord

    from tracker.errors import ConfigError
    from tracker.runtime.serve import serve

    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.not-a-real-token-value"
    # Discord's API, played by the loopback server: it refuses the token as Discord does.
    world.add(
        "/api/v10/users/@me",
        b'{"message": "401: Unauthorized", "code": 0}',
        status=401,
        content_type="application/json",
    )
    monkeypatch.setattr(discord.http.Route, "BASE", world.url("/api/v10"))
    settings = Settings.from_env({**os.environ, "DISCORD_TOKEN": token})

    with pytest.raises(ConfigError) as caught:
        asyncio.run(serve(settings, load_config(settings.sources_path)))

    assert "DISCORD_TOKEN" in str(caught.value) and "Reset Token" in str(caught.value)
    assert token not in str(caught.value)
    assert any(h.path == "/api/v10/users/@me" for h in world.hits)
    assert not settings.lock_path.exists() or not _locked(settings.lock_path)


def _locked(path: Path) -> bool:
    from tracker.errors import TrackerError
    from tracker.runtime.lock import InstanceLock

    try:
        with InstanceLock(path):
            return False
    except TrackerError:
        return True


def test_a_digest_discord_never_accepted_gives_way_to_the_next_which_carries_its_stories(
    serve_settings: Settings,
):
    from tracker.errors import DeliveryError

    class MisconfiguredChannel(StandInChannel):
        refuse = True

        async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
            if self.refuse:
                raise DeliveryError("Discord refused the message (403: Missing Access)", False)
            return await super().send(payload)

    clock = Clock(MONDAY)
    channel = MisconfiguredChannel()
    runtime, _ = runtime_for(serve_settings, clock, channel)

    async def three_days() -> list[Any]:
        try:
            await runtime.collect_all()
            monday = await runtime.digests.digest_job()
            clock.now += timedelta(hours=1)
            retried = (
                await runtime.digests.digest_job()
            )  # the 10-minute retry: same digest, same refusal
            clock.now = MONDAY + timedelta(days=1)
            tuesday = (
                await runtime.digests.digest_job()
            )  # still refused: Monday's gives way to Tuesday's
            channel.refuse = False  # someone fixed the permission
            clock.now += timedelta(minutes=10)
            fixed = await runtime.digests.digest_job()
            return [monday, retried, tuesday, fixed]
        finally:
            await runtime.stop()

    monday, retried, tuesday, fixed = asyncio.run(three_days())

    assert monday is not None and not monday.complete and "Missing Access" in (monday.error or "")
    assert retried is not None and retried.digest_id == monday.digest_id
    assert tuesday is not None and not tuesday.complete and tuesday.digest_id != monday.digest_id
    assert fixed is not None and fixed.complete and fixed.digest_id == tuesday.digest_id
    titles = [p["content"] for p in channel.sent]
    assert "Faster Decoding with Draft Models" in titles  # Monday's stories, in Tuesday's digest
    assert len(titles) == len(set(titles))


def test_a_failed_catch_up_still_starts_the_schedule(serve_settings: Settings, monkeypatch):
    clock = Clock(MONDAY)
    runtime, _ = runtime_for(serve_settings, clock)

    async def broken() -> Any:
        raise RuntimeError("chroma fell over")

    monkeypatch.setattr(runtime, "collect_all", broken)

    async def start() -> set[str]:
        try:
            await runtime.start()
            async with asyncio.timeout(120):
                await runtime.started.wait()
            return set(runtime.scheduler.job_ids())
        finally:
            await runtime.stop()

    jobs = asyncio.run(start())

    assert {"digest:digest", "collect:papers", "collect:blog", "collect:infer"} <= jobs


def test_the_watcher_survives_an_unexpected_error_and_goes_on_watching(serve_settings: Settings):
    clock = Clock(MONDAY)
    runtime, _ = runtime_for(serve_settings, clock)
    runtime.watch_seconds = 0.01
    path = serve_settings.sources_path
    real_check = runtime.watcher.check
    failures = []

    def check_once_broken() -> Any:
        if not failures:
            failures.append(1)
            raise OSError("the disk hiccuped")
        return real_check()

    runtime.watcher.check = check_once_broken  # type: ignore[method-assign]

    async def watch() -> Any:
        try:
            await runtime.schedule(paused=True)
            await runtime.start_watching()
            path.write_text(
                path.read_text(encoding="utf-8").replace("name: blog,", "name: weblog,")
            )
            async with asyncio.timeout(60):
                while "collect:weblog" not in runtime.scheduler.job_ids():
                    await asyncio.sleep(0.01)
            return runtime.config.source("weblog")
        finally:
            await runtime.stop()

    assert asyncio.run(watch()) is not None and failures == [1]


def test_with_discord_unreachable_serve_still_collects_keeps_the_digest_and_retries_login(
    serve_settings: Settings, world: FeedServer, monkeypatch: pytest.MonkeyPatch, caplog
):
    import logging
    import socket

    import discord

    from storage.outbox import DigestOutbox
    from storage.state import SQLiteStateStore
    from tracker.runtime.serve import serve

    with socket.socket() as probe:  # a port nothing listens on: Discord is unreachable
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{closed}/api/v10")
    path = serve_settings.sources_path
    due = datetime.now(UTC) - timedelta(minutes=1)
    path.write_text(
        path.read_text(encoding="utf-8") + f'digest: {{time: "{due:%H:%M}", timezone: UTC}}\n'
    )
    settings = Settings.from_env(
        {**os.environ, "DISCORD_TOKEN": "x" * 59, "DISCORD_CHANNEL_ID": "123456789012345678"}
    )
    caplog.set_level(logging.INFO, logger="tracker")

    def pending_digest() -> int | None:
        with SQLiteStateStore(settings.state_db) as state:
            return DigestOutbox(state).pending("discord:123456789012345678")

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(serve(settings, load_config(path), stop, login_retry=0.05))
        try:
            async with asyncio.timeout(120):
                while not (
                    settings.state_db.exists()
                    and await asyncio.to_thread(pending_digest) is not None
                    and caplog.text.count("cannot reach Discord") >= 2
                ):
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task

    asyncio.run(run())

    with SQLiteStateStore(settings.state_db) as state:
        assert state.count_items() > 0  # collected with no Discord at all
    assert pending_digest() is not None  # the digest waits in the outbox for the bot
    assert "x" * 59 not in caplog.text


def test_on_shutdown_the_digest_reaches_a_safe_point_before_the_bot_closes(
    serve_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    import bot.client
    from tracker.runtime.serve import serve

    seen: dict[str, Any] = {}

    class StandInBot:
        """Logs in and stays connected until closed, as a healthy bot does."""

        def __init__(self, services: LocalServices, channel_id: int | None, **_: Any):
            self.runtime = services.runtime
            self.closed = asyncio.Event()
            seen["bots"] = seen.get("bots", 0) + 1

        async def start(self, token: str) -> None:
            seen["started"] = True
            await self.closed.wait()

        async def close(self) -> None:
            seen["runtime_stopped_first"] = self.runtime._stop.is_set()
            self.closed.set()

    monkeypatch.setattr(bot.client, "TrackerBot", StandInBot)
    settings = Settings.from_env({**os.environ, "DISCORD_TOKEN": "y" * 59})

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(serve(settings, load_config(settings.sources_path), stop))
        async with asyncio.timeout(60):
            while not seen.get("started"):
                await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(run())

    assert seen == {"bots": 1, "started": True, "runtime_stopped_first": True}


def test_a_new_home_gets_a_first_digest_at_once_and_a_restart_that_day_none(
    serve_settings: Settings,
):
    early = MONDAY.replace(hour=6)  # two hours before the digest's time
    clock = Clock(early)
    out = io.StringIO()
    destination = FileDestination(serve_settings.digests_path, ZoneInfo("UTC"), out)

    async def start_twice() -> list[Any]:
        runtime, _ = runtime_for(serve_settings, clock, destination)
        try:
            await runtime.collect_all()
            first = await runtime.digests.digest_job()
        finally:
            await runtime.stop()
        clock.now = early + timedelta(minutes=30)
        again, _ = runtime_for(serve_settings, clock, destination)  # a restart
        try:
            restart = await again.digests.digest_job()
            clock.now = MONDAY  # 09:00: the day's scheduled digest
            scheduled = await again.digests.digest_job()
        finally:
            await again.stop()
        return [first, restart, scheduled]

    first, restart, scheduled = asyncio.run(start_twice())
    assert first is not None and first.complete
    assert restart is None
    assert scheduled is not None and scheduled.complete
    files = {p.name for p in serve_settings.digests_path.iterdir()}
    assert files == {"2026-11-23.md", "2026-11-23-2.md"}
    text = (serve_settings.digests_path / "2026-11-23.md").read_text(encoding="utf-8")
    assert "Faster Decoding with Draft Models" in text
    assert "This was your first digest. The next one comes today at 08:00 (UTC)" in text
    second = (serve_settings.digests_path / "2026-11-23-2.md").read_text(encoding="utf-8")
    assert "quiet" in second and "first digest" not in second


@pytest.mark.parametrize("hour", ["08:30", "14:00", "23:00"])
def test_an_offline_first_start_makes_no_first_digest_whatever_the_hour(
    serve_settings: Settings, hour: str, caplog: pytest.LogCaptureFixture
):
    working = serve_settings.sources_path.read_text(encoding="utf-8")
    offline = serve_settings.sources_path.with_name("offline.yaml")
    offline.write_text(
        "sources:\n"
        "  - {name: blog, kind: feed, url: 'http://127.0.0.1:9/feed.xml'}\n"
        "  - {name: infer, kind: github_releases, repo: acme/infer, "
        "url: 'http://127.0.0.1:9/releases.atom'}\n",
        encoding="utf-8",
    )
    at = datetime.combine(MONDAY.date(), datetime.strptime(hour, "%H:%M").time(), UTC)
    clock = Clock(at)
    out = io.StringIO()
    destination = FileDestination(serve_settings.digests_path, ZoneInfo("UTC"), out)

    async def start(sources: Path) -> tuple[Any, Any]:
        runtime = Runtime(
            serve_settings, load_config(sources), destination, Announcements(),
            now=clock, retry=RetryPolicy(attempts=2), sleep=no_sleep,
        )  # fmt: skip
        try:
            return await runtime.collect_all(), await runtime.digests.digest_job()
        finally:
            await runtime.stop()

    run, digest = asyncio.run(start(offline))

    assert all(r.status is Status.ERROR for r in run.results)
    assert digest is None
    assert not serve_settings.digests_path.exists() or not any(
        serve_settings.digests_path.iterdir()
    )
    assert "no first digest yet: no source has been collected" in caplog.text

    assert "127.0.0.1" in working  # the world's sources, answering
    clock.now += timedelta(hours=1)
    run, digest = asyncio.run(start(serve_settings.sources_path))
    assert digest is not None and digest.complete
    (made,) = serve_settings.digests_path.iterdir()
    assert "This was your first digest" in made.read_text(encoding="utf-8")
