"""Feedback: readers' 👍/👎 are stored one per reader and story, and nudge the ranking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from storage.feedback import SQLiteFeedbackStore
from storage.state import SQLiteStateStore
from storage.stories import SQLiteStoryStore
from tracker.app import Tracker
from tracker.config import Config
from tracker.models import Item, ItemKind, Match, Plan, Story, StoryMember, Validators
from tracker.settings import Settings
from tracker.understand.feedback import FeedbackSignal, feedback_signal
from tracker.understand.rank import rank

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def story(sid: str, source: str = "blog", age_hours: float = 1) -> Story:
    when = NOW - timedelta(hours=age_hours)
    member = StoryMember(
        source, f"{sid}-item", f"https://{source}.example/{sid}", sid, ItemKind.POST, when
    )
    return Story(
        sid, ItemKind.POST, sid, f"https://{source}.example/{sid}", when, when, when, (member,)
    )


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SQLiteStateStore]:
    with SQLiteStateStore(tmp_path / "state.db") as store:
        yield store


# --- the store -------------------------------------------------------------------------


def test_a_readers_newer_vote_replaces_the_older_and_none_withdraws_it(state) -> None:
    votes = SQLiteFeedbackStore(state)
    votes.vote("s1", "ada", 1, NOW)
    votes.vote("s1", "ada", -1, NOW + timedelta(minutes=1))
    assert votes.votes() == {"s1": -1}
    assert votes.counts("s1") == {"up": 0, "down": 1}
    votes.vote("s1", "ada", None, NOW + timedelta(minutes=2))
    assert votes.votes() == {}
    assert votes.counts("s1") == {"up": 0, "down": 0}


def test_taking_away_the_old_thumb_leaves_the_new_vote(state) -> None:
    votes = SQLiteFeedbackStore(state)
    votes.vote("s1", "ada", -1, NOW)
    votes.vote("s1", "ada", 1, NOW + timedelta(minutes=1))  # 👍 added, 👎 still there
    votes.vote("s1", "ada", None, NOW + timedelta(minutes=2), only=-1)  # 👎 removed
    assert votes.counts("s1") == {"up": 1, "down": 0}
    votes.vote("s1", "ada", None, NOW + timedelta(minutes=3), only=1)  # 👍 removed
    assert votes.counts("s1") == {"up": 0, "down": 0}


def test_an_event_that_arrives_late_does_not_undo_a_newer_vote(state) -> None:
    votes = SQLiteFeedbackStore(state)
    votes.vote("s1", "ada", 1, NOW + timedelta(minutes=5))
    votes.vote("s1", "ada", -1, NOW)  # sent before the 👍, delivered after it
    votes.vote("s1", "ada", None, NOW + timedelta(minutes=1))
    assert votes.votes() == {"s1": 1}


def test_votes_are_netted_per_story_across_readers(state) -> None:
    votes = SQLiteFeedbackStore(state)
    for user, vote in [("ada", 1), ("bob", 1), ("cy", -1)]:
        votes.vote("s1", user, vote, NOW)
    votes.vote("s2", "ada", -1, NOW)
    votes.vote("s3", "ada", 1, NOW)
    votes.vote("s3", "bob", -1, NOW)
    assert votes.votes() == {"s1": 1, "s2": -1, "s3": 0}
    assert votes.counts("s1") == {"up": 2, "down": 1}
    assert votes.counts("unknown") == {"up": 0, "down": 0}


def test_a_vote_is_up_down_or_none(state) -> None:
    with pytest.raises(ValueError):
        SQLiteFeedbackStore(state).vote("s1", "ada", 2, NOW)


# --- the signal ------------------------------------------------------------------------


def test_liked_sources_are_weighted_up_and_disliked_down_within_bounds() -> None:
    liked = [story(f"l{i}", "good") for i in range(40)]
    disliked = [story(f"d{i}", "bad") for i in range(40)]
    votes = {s.id: 1 for s in liked} | {s.id: -1 for s in disliked}
    signal = feedback_signal(votes, liked + disliked, {})
    assert 1.45 < signal.source_factor("good") <= 1.5
    assert 0.5 <= signal.source_factor("bad") < 0.55
    assert signal.source_factor("unvoted") == 1.0
    one = feedback_signal({"l0": 1}, liked[:1], {})
    assert 1.05 < one.source_factor("good") < 1.15  # one vote counts, a little


def test_a_storys_own_votes_do_not_also_raise_its_source() -> None:
    signal = feedback_signal({"a": 3}, [story("a", "blog")], {})
    assert signal.source_factor("blog", "a") == 1.0
    assert signal.source_factor("blog", "other") > 1.0


def test_similarity_to_liked_stories_adds_and_to_disliked_ones_takes_off() -> None:
    signal = feedback_signal(
        {"liked": 2, "disliked": -1, "even": 0},
        [],
        {"liked": unit(1, 0, 0), "disliked": unit(0, 1, 0), "even": unit(0, 0, 1)},
    )
    assert signal.similarity(unit(1, 0, 0)) == pytest.approx(1.0)
    assert signal.similarity(unit(0, 1, 0)) == pytest.approx(-1.0)
    assert signal.similarity(unit(1, 1, 0)) == pytest.approx(0.0, abs=1e-6)
    assert signal.similarity(unit(0, 0, 1)) == 0.0  # a story whose votes cancel is no guide
    assert signal.similarity(unit(-1, -1, 0)) == 0.0  # dissimilar is not "disliked"
    assert signal.similarity(None) == 0.0


# --- ranking with feedback -------------------------------------------------------------

VECTORS = {
    "liked": unit(1, 0),
    "disliked": unit(0, 1),
    "like-liked": unit(0.9, 0.1),
    "like-disliked": unit(0.1, 0.9),
}


def test_a_story_like_a_liked_one_rises_and_one_like_a_disliked_one_falls() -> None:
    signal = feedback_signal({"liked": 1, "disliked": -1}, [], VECTORS)
    candidates = [story("like-disliked"), story("like-liked")]
    without = {r.story.id: r.score for r in rank(candidates, NOW, VECTORS, None, {})}
    ranked = rank(candidates, NOW, VECTORS, None, {}, feedback=signal)
    with_votes = {r.story.id: r.score for r in ranked}
    assert ranked[0].story.id == "like-liked"
    assert with_votes["like-liked"] > without["like-liked"]
    assert with_votes["like-disliked"] < without["like-disliked"]


def test_parts_still_add_up_to_the_score_with_feedback() -> None:
    stories = [story("a", "good"), story("b", "bad", age_hours=30), story("c", "other")]
    voted = [story("v1", "good"), story("v2", "bad")]
    signal = feedback_signal({"v1": 2, "v2": -3}, voted, {"v1": unit(1, 0), "v2": unit(0, 1)})
    vectors = {"a": unit(1, 0.2), "b": unit(0.3, 1), "c": unit(1, 1)}
    for r in rank(stories, NOW, vectors, np.stack([unit(1, 0)]), {"good": 1.5}, feedback=signal):
        assert r.score == pytest.approx(sum(r.parts.values()), abs=1e-3)
        assert set(r.parts) == {
            "interest",
            "coverage",
            "recency",
            "popularity",
            "source_weight",
            "feedback",
            "kind_mix",
        }


def test_the_vote_multiplier_shows_in_the_source_weight_part() -> None:
    signal = feedback_signal({"v": -5}, [story("v", "bad")], {})
    (plain,) = rank([story("s", "bad")], NOW, {}, None, {"bad": 2.0})
    (voted,) = rank([story("s", "bad")], NOW, {}, None, {"bad": 2.0}, feedback=signal)
    base = plain.parts["recency"]
    assert plain.parts["source_weight"] == pytest.approx(base * (2.0 - 1.0), abs=1e-3)
    factor = signal.source_factor("bad")
    assert voted.parts["source_weight"] == pytest.approx(base * (2.0 * factor - 1.0), abs=1e-3)


def test_without_votes_the_ranking_is_unchanged() -> None:
    stories = [story("a", "x"), story("b", "y", age_hours=5)]
    vectors = {"a": unit(1, 0), "b": unit(0, 1)}
    plain = rank(stories, NOW, vectors, None, {"x": 1.3})
    empty = rank(stories, NOW, vectors, None, {"x": 1.3}, feedback=FeedbackSignal())
    assert [(r.story.id, r.score) for r in plain] == [(r.story.id, r.score) for r in empty]
    assert all(r.parts["feedback"] == 0.0 for r in empty)


# --- end to end: votes in the state store change Tracker.ranked -------------------------


class FakeEmbedder:
    """Only its name is used: the stories' vectors are stored by hand."""

    name = "fake:2d"
    dimensions = 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - not called
        raise AssertionError("ranking with stored vectors needs no embedding")


def add_story(state: SQLiteStateStore, source: str, n: int, vector: np.ndarray) -> str:
    item = Item(
        id=f"post:{source}-{n}",
        source=source,
        source_kind="feed",
        kind=ItemKind.POST,
        url=f"https://{source}.example/{n}",
        title=f"{source} post {n}",
        published=NOW - timedelta(hours=2),
    )
    state.save_success(source, "feed", [item], Validators(), "ok", NOW)
    placement = SQLiteStoryStore(state).place(
        item,
        Plan(Match(None, "new")),
        [f"url:{item.url}"],
        vector,
        NOW,
        vector_model=FakeEmbedder.name,
    )
    return placement.story_id


def test_thumbs_down_on_a_sources_stories_lowers_its_other_stories(
    state: SQLiteStateStore, tmp_path: Path
) -> None:
    tracker = Tracker(
        Settings(home=tmp_path, sources_path=tmp_path / "sources.yaml"), state, FakeEmbedder()
    )
    # The disliked source's new story is about something else than the ones voted
    # down, so only the source multiplier can move it.
    voted = [add_story(state, "noisy", n, unit(0, 1)) for n in range(3)]
    noisy_new = add_story(state, "noisy", 9, unit(1, 0))
    quiet_new = add_story(state, "quiet", 9, unit(1, 0))

    def score(story_id: str) -> float:
        """Its score before the mix of kinds (which depends on the place it is ranked)."""
        ranked = {r.story.id: r for r in tracker.ranked(Config(), now=NOW)}
        return ranked[story_id].score - ranked[story_id].parts["kind_mix"]

    before = score(noisy_new)
    assert before == pytest.approx(score(quiet_new))
    feedback = SQLiteFeedbackStore(state)
    for story_id in voted:
        for user in ("ada", "bob"):
            feedback.vote(story_id, user, -1, NOW)

    assert score(noisy_new) < before
    assert score(quiet_new) == pytest.approx(before)
    ranked = {r.story.id: r for r in tracker.ranked(Config(), now=NOW)}
    assert next(iter(ranked)) == quiet_new
    assert ranked[noisy_new].parts["source_weight"] < 0
    assert ranked[noisy_new].parts["feedback"] == 0.0
    assert ranked[voted[0]].parts["feedback"] == pytest.approx(-1.0)
