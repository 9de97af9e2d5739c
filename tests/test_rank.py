"""Ranking: pure, explainable, and mixes kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tracker.models import ItemKind, Story, StoryMember
from tracker.rank import Weights, rank

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def story(
    sid: str, kind: ItemKind = ItemKind.POST, sources=("blog",), age_hours: float = 1
) -> Story:
    when = NOW - timedelta(hours=age_hours)
    members = tuple(
        StoryMember(s, f"{sid}-{s}", f"https://{s}.example/{sid}", sid, kind, when) for s in sources
    )
    return Story(sid, kind, sid, f"https://x.example/{sid}", when, when, when, members)


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_parts_add_up_to_the_score() -> None:
    stories = [story("a", sources=("blog", "news")), story("b", age_hours=48)]
    vectors = {"a": unit(1, 0), "b": unit(0, 1)}
    for r in rank(stories, NOW, vectors, np.stack([unit(1, 0)]), {"blog": 1.5}):
        assert r.score == pytest.approx(sum(r.parts.values()), abs=1e-3)
        assert set(r.parts) == {"interest", "coverage", "recency", "source_weight", "kind_mix"}


def test_interest_similarity_coverage_and_recency_each_lift_a_story() -> None:
    interests = np.stack([unit(1, 0)])
    on_topic, off_topic = story("on"), story("off")
    ranked = rank([off_topic, on_topic], NOW, {"on": unit(1, 0), "off": unit(0, 1)}, interests, {})
    assert [r.story.id for r in ranked] == ["on", "off"]
    widely, once = story("wide", sources=("a", "b", "c")), story("once")
    assert rank([once, widely], NOW, {}, None, {})[0].story.id == "wide"
    fresh, stale = story("fresh", age_hours=1), story("stale", age_hours=72)
    assert rank([stale, fresh], NOW, {}, None, {})[0].story.id == "fresh"


def test_an_old_post_collected_today_is_not_fresh() -> None:
    from dataclasses import replace

    old = replace(story("old", age_hours=1), published=NOW - timedelta(days=400))
    (ranked,) = rank([old], NOW, {}, None, {})
    assert ranked.parts["recency"] < 0.001


def test_source_weight_scales_the_story() -> None:
    ranked = {
        r.story.id: r
        for r in rank(
            [story("a", sources=("heavy",)), story("b", sources=("light",))],
            NOW,
            {},
            None,
            {"heavy": 2.0, "light": 0.5},
        )
    }
    assert ranked["a"].parts["source_weight"] > 0 > ranked["b"].parts["source_weight"]
    assert ranked["a"].score > ranked["b"].score


def test_a_digest_is_not_ten_releases() -> None:
    releases = [story(f"r{i}", ItemKind.RELEASE, age_hours=1) for i in range(10)]
    papers = [story(f"p{i}", ItemKind.PAPER, age_hours=3) for i in range(3)]
    top = rank(releases + papers, NOW, {}, None, {}, Weights(kind_penalty=0.15))[:10]
    kinds = [r.story.kind for r in top]
    assert kinds.count(ItemKind.PAPER) == 3
    assert top[3].parts["kind_mix"] < 0


def test_ranking_is_deterministic() -> None:
    stories = [story(f"s{i}") for i in range(20)]
    first = [r.story.id for r in rank(stories, NOW, {}, None, {})]
    assert first == [r.story.id for r in rank(list(reversed(stories)), NOW, {}, None, {})]
