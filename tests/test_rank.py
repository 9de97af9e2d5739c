"""Ranking: pure, explainable, and mixes kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tracker.models import Engagement, ItemKind, Story, StoryMember
from tracker.understand.rank import Weights, rank

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
        assert set(r.parts) == {
            "interest",
            "coverage",
            "recency",
            "popularity",
            "source_weight",
            "kind_mix",
        }


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


def voted(sid: str, community: str, votes: int, comments: int = 0) -> Story:
    from dataclasses import replace

    plain = story(sid)
    member = replace(plain.members[0], engagement=Engagement(community, votes, comments))
    return replace(plain, members=(member,))


def test_with_equal_interest_and_recency_the_more_engaged_story_ranks_first() -> None:
    quiet, liked = story("quiet"), voted("liked", "hackernews", 250, 80)
    ranked = rank([quiet, liked], NOW, {}, None, {})
    assert [r.story.id for r in ranked] == ["liked", "quiet"]
    assert ranked[1].parts["popularity"] == 0.0 < ranked[0].parts["popularity"]


def test_popularity_is_on_each_communitys_scale_and_saturates() -> None:
    def crowd(s: Story) -> float:
        return rank([s], NOW, {}, None, {})[0].parts["popularity"]

    # 50 upvotes is a strong Daily Papers pick; 50 points is an ordinary HN day.
    assert crowd(voted("hf", "hf_papers", 50)) > crowd(voted("hn", "hackernews", 50))
    assert crowd(voted("hit", "hackernews", 300)) == crowd(voted("huge", "hackernews", 5000))
    assert crowd(voted("hit", "hackernews", 300)) == Weights().popularity
    assert crowd(voted("some", "reddit", 100)) < crowd(voted("more", "reddit", 400))


def test_two_feeds_of_one_blog_are_one_outlet() -> None:
    from dataclasses import replace

    base = story("post")
    atom = replace(base.members[0], source="blog-atom", url="https://blog.openai.com/p")
    json_feed = replace(base.members[0], source="blog-json", url="https://openai.com/index/p")
    other = replace(base.members[0], source="news", url="https://www.theverge.com/p")
    one_blog = replace(base, id="one", members=(atom, json_feed))
    two_outlets = replace(base, id="two", members=(atom, other))
    parts = {r.story.id: r.parts for r in rank([one_blog, two_outlets], NOW, {}, None, {})}
    assert parts["one"]["coverage"] == 0.0
    assert parts["two"]["coverage"] == Weights().coverage


def test_engagement_is_said_in_each_communitys_words_most_voted_first() -> None:
    from tracker.understand.popularity import describe

    said = describe(
        {
            "hf_papers": Engagement("hf_papers", 87, 1),
            "hackernews": Engagement("hackernews", 1412, 0),
        }
    )
    assert said == "1,412 points on Hacker News; 87 upvotes and 1 comment on Hugging Face"
    assert describe({}) == ""
