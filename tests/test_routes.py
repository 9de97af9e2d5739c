"""Digest routes: papers to one destination and releases to another, daily or weekly.

The runtime runs for real (SQLite, Chroma, the embedding model, feeds on loopback);
only the clock and, where a failure is wanted, the destination are the test's.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RECENT, FeedServer
from tests.test_serve import Clock, no_sleep
from tracker.cli import main
from tracker.config import load_config, parse_config
from tracker.config.values import WEEKDAYS
from tracker.deliver.delivery import RetryPolicy
from tracker.deliver.routes import route_named, routes
from tracker.errors import ConfigError, DeliveryError
from tracker.models import DEFAULT_ROUTE, Digest, ItemKind, Story, StoryMember
from tracker.runtime import Runtime
from tracker.runtime.schedule import digest_due, last_fire_time, next_fire_time, plan_jobs
from tracker.services import Outgoing
from tracker.settings import Settings

#: A Monday morning after 08:00, the day the world's stories were collected.
MONDAY = datetime.combine(RECENT.date() - timedelta(days=RECENT.weekday()), time(9, 0), tzinfo=UTC)

ROUTES = """
digest:
  time: "08:00"
  routes:
    - name: papers
      sections: [papers]
    - name: releases
      sources: [infer]
    - name: weekly
      cadence: weekly
      day: monday
      size: 3
"""


def with_routes(world: FeedServer, text: str = ROUTES) -> Path:
    path = Path(Settings.from_env().sources_path)
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return path


def runtime(clock: Clock) -> Runtime:
    settings = Settings.from_env()
    return Runtime(
        settings,
        load_config(settings.sources_path),
        now=clock,
        retry=RetryPolicy(attempts=2),
        sleep=no_sleep,
    )


def files(route: str) -> dict[str, str]:
    folder = Settings.from_env().digests_path / route
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}


# --- the configuration --------------------------------------------------------------------


SOURCES = """
sources:
  - {name: arxiv-cl, kind: arxiv, query: "cat:cs.CL", tags: [papers]}
  - {name: hf-blog, kind: feed, url: "https://huggingface.co/blog/feed.xml", tags: [posts]}
  - {name: vllm, kind: github_releases, repo: vllm-project/vllm, tags: [stack]}
"""


def test_without_routes_there_is_one_daily_route_as_before():
    config = parse_config(SOURCES + 'digest: {time: "07:30", size: 5, channel_id: 9}\n')
    (route,) = routes(config)
    assert route.name == DEFAULT_ROUTE and route.weekday is None and route.file is None
    assert (route.at, route.size, route.max_age) == (time(7, 30), 5, timedelta(days=3))
    assert route.cadence == "daily at 07:30 (UTC)"
    assert plan_jobs(config)["digest:digest"].kind == "daily"


def test_a_route_takes_what_digest_does_not_say_and_chooses_by_section_tag_and_source():
    config = parse_config(
        SOURCES
        + """
digest:
  time: "08:00"
  timezone: Europe/Berlin
  size: 8
  routes:
    - {name: papers, sections: [papers], channel_id: 111}
    - {name: stack, tags: [stack], sources: [hf-blog], time: "18:00"}
    - {name: weekly, cadence: weekly, day: Fri, file: week}
"""
    )
    papers, stack, weekly = routes(config)
    assert papers.kinds == {ItemKind.PAPER} and papers.sources is None and papers.channel_id == 111
    assert (papers.size, papers.timezone, papers.file) == (8, "Europe/Berlin", "papers")
    assert stack.sources == {"vllm", "hf-blog"} and stack.at == time(18, 0)
    assert weekly.weekday == WEEKDAYS.index("friday") and weekly.file == "week"
    # A week's digest looks back a week, not the daily three days.
    assert weekly.max_age == timedelta(days=7)
    assert weekly.cadence == "weekly on Friday at 08:00 (Europe/Berlin)"

    release = story(ItemKind.RELEASE, "vllm")
    post = story(ItemKind.POST, "hf-blog", "vllm")
    paper = story(ItemKind.PAPER, "arxiv-cl")
    assert [papers.takes(s) for s in (release, post, paper)] == [False, False, True]
    assert [stack.takes(s) for s in (release, post, paper)] == [True, True, False]
    assert all(weekly.takes(s) for s in (release, post, paper))
    assert route_named(config, "STACK") is not None
    with pytest.raises(KeyError, match="papers, stack, weekly"):
        route_named(config, "nightly")


def test_a_route_that_would_send_nothing_is_an_error_with_its_line():
    text = (
        SOURCES
        + """
digest:
  routes:
    - name: papers
      sources: [arxiv-c1]
      tags: [paper]
    - name: papers
      cadence: weekly
"""
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    said = str(caught.value)
    assert "sources.yaml:10: sources: no source is 'arxiv-c1'. Fix: did you mean arxiv-cl?" in said
    assert "sources.yaml:11: tags: no tag is 'paper'. Fix: did you mean papers?" in said
    assert (
        "sources.yaml:12: name: 'papers' is already used on line 9. Fix: give every route" in said
    )


@pytest.mark.parametrize(
    ("route", "said"),
    [
        ("{name: a, day: monday}", "day: is only for a weekly route"),
        ("{name: a, cadence: weekly, day: funday}", "'funday' is not a day of the week"),
        ("{name: a, cadence: hourly}", "cadence"),
        ("{name: ../etc, sections: [papers]}", "'../etc' is not a plain name"),
        ("{name: a, sections: [news]}", "sections"),
        ("{name: a, time: '8am'}", "'8am' is not a time of day"),
        ("{name: a, colour: red}", "colour: is not a known key"),
    ],
)
def test_a_mistake_in_a_route_is_named(route: str, said: str):
    with pytest.raises(ConfigError, match=said):
        parse_config(SOURCES + f"digest:\n  routes:\n    - {route}\n")


# --- the weekly clock ---------------------------------------------------------------------


def test_a_weekly_route_is_due_once_a_week_on_its_day():
    text = ROUTES.replace("day: monday", "day: wednesday").replace("[infer]", "[vllm]")
    config = parse_config(SOURCES + text)
    weekly = route_named(config, "weekly")
    wednesday = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert last_fire_time(wednesday + timedelta(hours=1), weekly) == wednesday
    assert last_fire_time(wednesday - timedelta(minutes=1), weekly) == wednesday - timedelta(7)
    assert next_fire_time(wednesday, weekly) == wednesday + timedelta(days=7)
    sent = wednesday + timedelta(minutes=5)
    assert not digest_due(sent, wednesday + timedelta(days=6), weekly)
    assert digest_due(sent, wednesday + timedelta(days=7, hours=1), weekly)
    assert plan_jobs(config)["digest:weekly"].weekday == 2


# --- serving several routes ---------------------------------------------------------------


def test_papers_and_releases_go_to_their_own_files_and_the_weekly_one_waits_a_week(
    world: FeedServer,
):
    with_routes(world)
    clock = Clock(MONDAY)
    tracker = runtime(clock)

    async def weeks() -> list[dict[str, Any]]:
        try:
            await tracker.collect_all()
            monday = await tracker.digests.all_digests()
            clock.now = MONDAY + timedelta(days=1)
            tuesday = await tracker.digests.all_digests()
            clock.now = MONDAY + timedelta(days=7)
            next_monday = await tracker.digests.all_digests()
            return [monday, tuesday, next_monday]
        finally:
            await tracker.stop()

    monday, tuesday, next_monday = asyncio.run(weeks())

    assert all(r is not None and r.complete for r in monday.values())
    assert tuesday["weekly"] is None  # not its day
    assert tuesday["papers"] is not None and tuesday["releases"] is not None
    assert next_monday["weekly"] is not None and next_monday["weekly"].complete

    papers, releases, weekly = files("papers"), files("releases"), files("weekly")
    assert len(papers) == len(releases) == 3 and len(weekly) == 2
    first_papers = papers[f"{MONDAY.date()}.md"]
    assert "# AI engineering digest: papers," in first_papers
    assert "Faster Folding with Graph Models" in first_papers
    assert "infer v1.0.0" not in first_papers
    first_releases = releases[f"{MONDAY.date()}.md"]
    assert "infer v1.0.0" in first_releases and "Faster" not in first_releases
    # The first digest of each route says when that route's next one comes.
    assert "The next one comes tomorrow at 08:00 (UTC)" in first_releases
    first_week = weekly[f"{MONDAY.date()}.md"]
    assert "weekly" in first_week.splitlines()[0]
    # The same story reaches every route that takes it, once each.
    assert "Faster Folding with Graph Models" in first_week and "infer v1.0.0" in first_week
    assert "The next one comes on Monday" in first_week
    for route in (papers, releases, weekly):
        later = "".join(text for name, text in route.items() if name != f"{MONDAY.date()}.md")
        assert "Faster Folding" not in later and "infer v1.0.0" not in later
    assert not (Settings.from_env().digests_path / f"{MONDAY.date()}.md").exists()


def test_a_route_added_while_serving_makes_its_first_digest_at_once(world: FeedServer):
    path = with_routes(world)
    clock = Clock(MONDAY)
    tracker = runtime(clock)

    async def serve() -> list[str]:
        try:
            await tracker.collect_all()
            await tracker.schedule(paused=True)
            await tracker.digests.all_digests()
            path.write_text(
                path.read_text(encoding="utf-8")
                + "    - {name: blog, sources: [blog], cadence: weekly, day: friday}\n",
                encoding="utf-8",
            )
            await tracker.reload()
            async with asyncio.timeout(60):
                while not files("blog"):
                    await asyncio.sleep(0.05)
            return tracker.scheduler.job_ids()
        finally:
            await tracker.stop()

    jobs = asyncio.run(serve())

    assert "digest:blog" in jobs
    (first,) = files("blog").values()
    assert "The next one comes on Friday" in first
    assert "Faster Decoding with Draft Models" in first  # the paper the blog wrote about
    assert "Faster Folding" not in first and "infer v1.0.0" not in first
    assert len(files("papers")) == 1  # the edit made no second first digest elsewhere


class Channel:
    """A destination as Discord would be: it accepts messages, or is down for a while."""

    def __init__(self, name: str, down: int = 0):
        self.name = name
        self.down = down
        self.sent: list[str] = []

    def render(self, digest: Digest) -> list[Outgoing]:
        if digest.quiet:
            return [Outgoing({"content": "quiet"}, ())]
        return [Outgoing({"content": e.title}, (e.story_id,)) for e in digest.entries]

    async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
        if self.down:
            self.down -= 1
            raise DeliveryError("Discord did not accept the message right now (503)", True)
        self.sent.append(payload["content"])
        return f"{self.name}-{len(self.sent)}"


def test_a_route_whose_channel_is_down_resumes_later_without_touching_the_others(
    world: FeedServer,
):
    with_routes(world)
    clock = Clock(MONDAY)
    tracker = runtime(clock)
    channels = {
        "papers": Channel("discord:1"),
        "releases": Channel("discord:2", down=4),  # two tries a delivery: down for two
        "weekly": Channel("discord:3"),
    }
    tracker.destinations = lambda route: channels[route.name]

    async def day() -> list[dict[str, Any]]:
        try:
            await tracker.collect_all()
            first = await tracker.digests.all_digests()
            clock.now += timedelta(minutes=10)  # the redelivery
            again = await tracker.digests.all_digests()
            clock.now += timedelta(minutes=10)
            last = await tracker.digests.all_digests()
            return [first, again, last]
        finally:
            await tracker.stop()

    first, again, last = asyncio.run(day())

    assert first["papers"].complete and first["weekly"].complete
    assert not first["releases"].complete
    assert again["papers"] is None and again["weekly"] is None  # nothing owed, nothing sent
    assert not again["releases"].complete
    assert last["releases"].complete
    assert last["releases"].digest_id == first["releases"].digest_id  # the same digest, resumed
    assert channels["releases"].sent == ["infer v1.0.0"]
    for channel in channels.values():
        assert len(channel.sent) == len(set(channel.sent))
    assert "infer v1.0.0" in channels["weekly"].sent


def story(kind: ItemKind, *sources: str) -> Story:
    members = tuple(
        StoryMember(
            source=name,
            item_id=f"{name}-1",
            url=f"https://example.com/{name}",
            title="A story",
            kind=kind,
            added=RECENT,
            dated=RECENT,
        )
        for name in sources
    )
    return Story(
        id="s-" + "-".join(sources),
        kind=kind,
        title="A story",
        url=members[0].url,
        first_seen=RECENT,
        last_changed=RECENT,
        published=RECENT,
        members=members,
    )


def test_tracker_digest_shows_and_records_one_route_at_a_time(world: FeedServer, capsys):
    with_routes(world)
    assert main(["collect"]) == 0
    capsys.readouterr()

    assert main(["digest", "--route", "releases", "--format", "json"]) == 0
    releases = json.loads(capsys.readouterr().out)
    assert main(["digest", "--route", "releases", "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert main(["digest", "--format", "json"]) == 0  # the first route: papers
    papers = json.loads(capsys.readouterr().out)
    assert main(["digest", "--route", "weekly", "--dry-run", "--format", "json"]) == 0
    weekly = json.loads(capsys.readouterr().out)
    assert main(["digest", "--route", "nightly"]) != 0
    said = capsys.readouterr().err

    assert releases["title"] == "releases"
    assert [e["title"] for s in releases["sections"] for e in s["entries"]] == ["infer v1.0.0"]
    assert again["quiet"] is True  # recorded as sent for that route...
    assert papers["title"] == "papers" and not papers["quiet"]  # ...and no other
    assert weekly["title"] == "weekly"  # not "weekly, weekly"
    assert "no digest route is named 'nightly'" in said and "papers, releases, weekly" in said
