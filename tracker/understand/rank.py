"""Ranking: a score for each story that can always be explained as its parts.

Pure: a function of the stories, their vectors, the user's interests, the
sources' weights, the readers' votes (``tracker.understand.feedback``) and an injected
``now``. The parts add up to the score, so "why is this first?" has an exact
answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from tracker.models import Story
from tracker.understand.feedback import FeedbackSignal
from tracker.understand.popularity import popularity
from tracker.urls import outlet


@dataclass(frozen=True)
class Weights:
    """How much each part counts. The defaults favour what matches your interests."""

    interest: float = 2.0
    coverage: float = 0.5
    recency: float = 1.0
    #: For a hit in some community (see tracker.understand.popularity); less, log-scaled, below.
    popularity: float = 1.0
    #: Hours after which recency (since publication or the latest update) is worth half.
    half_life_hours: float = 24.0
    #: Taken off for each better-ranked story of the same kind, so that a digest
    #: is not ten releases.
    kind_penalty: float = 0.15


@dataclass(frozen=True)
class Ranked:
    story: Story
    score: float
    parts: dict[str, float] = field(default_factory=dict)


def freshness(story: Story) -> datetime:
    """When the story's news happened: its publication (or, lacking one, when it was first
    seen), or its latest update. A years-old post collected today is not news."""
    moment = min(story.published or story.first_seen, story.first_seen)
    return max(moment, story.last_changed) if story.updated else moment


def base_parts(
    story: Story,
    now: datetime,
    vector: np.ndarray | None,
    interests: np.ndarray | None,
    source_weights: Mapping[str, float],
    weights: Weights = Weights(),
    feedback: FeedbackSignal | None = None,
) -> dict[str, float]:
    """The parts of a story's score that do not depend on the other stories.

    With ``feedback``, each source's weight is multiplied by what the votes on that
    source say, and a ``feedback`` part adds the story's similarity to liked stories
    and takes off its similarity to disliked ones (not scaled by the weight).
    """
    similarity = 0.0
    if vector is not None and interests is not None and len(interests):
        similarity = max(0.0, float(np.max(interests @ vector)))
    sources = story.sources
    # Independent outlets, not source entries: two arXiv queries are one publisher, and
    # a blog's Atom and JSON feeds (or blog.x.com and x.com) are one outlet.
    outlets = {outlet(m.url) or m.source for m in story.members} or {""}
    age_hours = max(0.0, (now - freshness(story)).total_seconds() / 3600)
    interest = weights.interest * similarity
    coverage = weights.coverage * math.log2(len(outlets))
    recency = weights.recency * 0.5 ** (age_hours / weights.half_life_hours)
    crowd = weights.popularity * popularity(story.engagement)
    base = interest + coverage + recency + crowd
    weight = max((_source_weight(s, story, source_weights, feedback) for s in sources), default=1.0)
    parts = {
        "interest": round(interest, 4),
        "coverage": round(coverage, 4),
        "recency": round(recency, 4),
        "popularity": round(crowd, 4),
        # The source weight scales the rest; as a part it is what the scaling added.
        "source_weight": round(base * (weight - 1.0), 4),
    }
    if feedback is not None:
        parts["feedback"] = round(feedback.similarity(vector), 4) + 0.0  # no -0.0
    return parts


def _source_weight(
    source: str,
    story: Story,
    source_weights: Mapping[str, float],
    feedback: FeedbackSignal | None,
) -> float:
    """The configured weight, times the votes' multiplier (without the story's own votes)."""
    weight = source_weights.get(source, 1.0)
    return weight * feedback.source_factor(source, story.id) if feedback is not None else weight


def rank(
    stories: Sequence[Story],
    now: datetime,
    vectors: Mapping[str, np.ndarray],
    interests: np.ndarray | None,
    source_weights: Mapping[str, float],
    weights: Weights = Weights(),
    feedback: FeedbackSignal | None = None,
) -> list[Ranked]:
    """Stories best first, each with its score and parts.

    Greedy: after the base score, each story loses ``kind_penalty`` for every
    story of its kind already placed above it, which mixes papers, posts and
    releases without hiding a strong one.
    """
    queues: dict[str, list[tuple[float, str, Story, dict[str, float]]]] = {}
    for story in stories:
        parts = base_parts(
            story, now, vectors.get(story.id), interests, source_weights, weights, feedback
        )
        queues.setdefault(story.kind.value, []).append(
            (sum(parts.values()), story.id, story, parts)
        )
    for queue in queues.values():
        queue.sort(key=lambda entry: (-entry[0], entry[1]))  # best first; ids break ties
    heads = dict.fromkeys(queues, 0)
    ranked: list[Ranked] = []
    while any(heads[kind] < len(queue) for kind, queue in queues.items()):

        def adjusted(kind: str) -> float:
            return queues[kind][heads[kind]][0] - weights.kind_penalty * heads[kind]

        kind = max((k for k in sorted(queues) if heads[k] < len(queues[k])), key=adjusted)
        _, _, story, parts = queues[kind][heads[kind]]
        parts = {
            **parts,
            "kind_mix": round(-weights.kind_penalty * heads[kind], 4) + 0.0,
        }  # no -0.0
        ranked.append(Ranked(story, round(sum(parts.values()), 4), parts))
        heads[kind] += 1
    return ranked
