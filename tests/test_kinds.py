"""A new kind of source is one module and one registry line: this file is that module.

"zine" is a made-up community that publishes a JSON list of posts with claps. Registered
here (and nowhere else), it is validated in sources.yaml, added by its address, collected,
scheduled by its own default interval and ranked by its own scale of votes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from storage.state import SQLiteStateStore
from tests.conftest import FeedServer
from tracker.app import open_tracker
from tracker.collect import collect
from tracker.collect.sources.base import CollectContext, parse_json
from tracker.config import parse_config
from tracker.config.kinds import (
    AddressRule,
    SourceKind,
    SourceSettings,
    VoteScale,
    Wanted,
    kinds,
    registered,
)
from tracker.errors import ConfigError
from tracker.follow.edit import follow
from tracker.models import Engagement, Fetched, Item, ItemKind, Status
from tracker.runtime.schedule import JobPlan, plan_jobs
from tracker.settings import Settings
from tracker.understand.popularity import describe, popularity

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class ZineSource(SourceSettings):
    kind: Literal["zine"]
    issue: str = Field(description="Which issue to follow.")


class ZineCollector:
    def collect(self, source: ZineSource, ctx: CollectContext) -> Fetched:
        url = f"{source.url}/{source.issue}.json"
        posts = parse_json(ctx.get(url).content, url, "zine JSON")
        items = [
            Item(
                id=str(post["id"]),
                source=source.name,
                source_kind=source.kind,
                kind=ItemKind.POST,
                url=post["url"],
                title=post["title"],
                text=post["text"],
                published=NOW - timedelta(hours=2),
                engagement=Engagement("zine", post["claps"], post["replies"]),
            )
            for post in posts
        ]
        return Fetched(items)


_ZINE = re.compile(r"^https?://zine\.example/(\w+)/?$")


def zine_wanted(text: str, explicit: bool) -> Wanted | None:
    match = _ZINE.match(text)
    if match is None:
        return None
    return Wanted("zine", (("issue", match.group(1)),), f"zine {match.group(1)}", "zine")


def follows_zine(node: Mapping[str, Any], wanted: Wanted) -> bool:
    return node.get("kind") == "zine" and node.get("issue") == dict(wanted.keys)["issue"]


ZINE = SourceKind(
    name="zine",
    settings=ZineSource,
    collector=ZineCollector(),
    interval=timedelta(hours=4),
    votes=VoteScale("Zine", "claps", hit=20),
    address=AddressRule(zine_wanted, "https://zine.example/<issue>", follows_zine),
    endpoint=("issue",),
    example="issue: weekly",
)


@pytest.fixture(autouse=True)
def zine() -> Iterator[SourceKind]:
    with registered(ZINE) as kind:
        yield kind


@pytest.fixture
def zine_server(server: FeedServer) -> FeedServer:
    posts = [
        {
            "id": 1,
            "url": "https://zine.example/weekly/quantised-kv-caches",
            "title": "Quantised KV caches in practice",
            "text": "We cut the KV cache of a 70B model to a quarter with 4-bit keys and values.",
            "claps": 25,
            "replies": 3,
        }
    ]
    server.add("/zine/weekly.json", json.dumps(posts), content_type="application/json")
    return server


def zine_yaml(server: FeedServer, extra: str = "") -> str:
    return f"""sources:
  - name: weekly
    kind: zine
    issue: weekly
    url: "{server.url("/zine")}"
{extra}"""


def test_a_registered_kind_is_validated_like_the_built_in_ones(zine_server: FeedServer):
    (source,) = parse_config(zine_yaml(zine_server)).sources
    assert isinstance(source, ZineSource)
    assert source.issue == "weekly"

    with pytest.raises(ConfigError) as missing:
        parse_config("sources:\n  - name: weekly\n    kind: zine\n")
    (problem,) = missing.value.problems
    assert (problem.line, problem.key, problem.fix) == (2, "issue", "add  issue: weekly")

    with pytest.raises(ConfigError) as unknown:
        parse_config("sources:\n  - name: weekly\n    kind: zines\n")
    assert "zine" in str(unknown.value.problems[0].fix)


def test_it_is_added_by_its_address_without_a_probe(tmp_path: Path, settings: Settings):
    path = tmp_path / "sources.yaml"
    path.write_text("sources: []\n", encoding="utf-8")

    followed = follow(path, "https://zine.example/weekly", settings, http=None)

    assert (followed.name, followed.kind) == ("zine", "zine")
    (source,) = parse_config(path.read_text(encoding="utf-8")).sources
    assert (source.kind, source.issue) == ("zine", "weekly")  # type: ignore[attr-defined]


def test_it_is_collected_scheduled_and_ranked_by_its_own_scale(
    zine_server: FeedServer, settings: Settings
):
    config = parse_config(zine_yaml(zine_server))
    with SQLiteStateStore(settings.state_db) as store:
        (result,) = collect(config, settings, store, now=lambda: NOW)
        assert (result.status, result.new) == (Status.OK, 1)

    assert plan_jobs(config)["collect:weekly"] == JobPlan.every(timedelta(hours=4))

    with open_tracker(settings) as tracker:
        tracker.process(now=lambda: NOW)
        (ranked,) = tracker.ranked(config, now=NOW)
    assert ranked.story.engagement == {"zine": Engagement("zine", 25, 3)}
    assert ranked.parts["popularity"] == 1.0  # 25 claps is past the zine's hit of 20
    assert describe(ranked.story.engagement) == "25 claps and 3 comments on Zine"


def test_votes_count_on_each_kinds_scale():
    # 25 is a hit on the zine's scale and a quiet day on Hacker News'.
    assert popularity({"zine": Engagement("zine", 25)}) == 1.0
    assert popularity({"hackernews": Engagement("hackernews", 25)}) < 0.6


def test_a_kind_registered_for_a_while_is_gone_afterwards():
    with registered(ZINE):
        pass
    assert "zine" in kinds()  # the fixture's registration is still in force
    other = SourceKind("other", ZineSource, ZineCollector(), timedelta(hours=1))
    with registered(other):
        assert "other" in kinds()
    assert "other" not in kinds()
