"""Readers' 👍 and 👎 as a ranking signal: which sources, and which topics, they like.

Pure: a function of the net votes per story, the voted stories and their
vectors. Two effects, both bounded and both visible among a story's score parts:

1. **Source multiplier.** The net votes (👍 minus 👎) on a source's stories move
   that source's weight by the factor ``1 + 0.5 * tanh(net / 5)``: about ±10 % after
   one vote, ±38 % after five, never beyond ±50 %, so a few early votes count and a
   long streak cannot bury or flood a source. It multiplies the ``weight`` set in
   ``sources.yaml`` and shows in the ``source_weight`` part.
2. **Similarity.** A story gets the part ``feedback = 1.0 * (liked - disliked)``,
   where ``liked`` is its highest cosine similarity to a story with more 👍 than 👎
   and ``disliked`` the same for stories with more 👎, each floored at 0, the way
   the ``interest`` part works. More of what you liked, less of what you did not.

A story's own votes count once: through similarity (a story is as similar to
itself as it gets, 1.0). Its source's multiplier is made from the votes on the
source's *other* stories, so one vote does not lift its own story twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tracker.models import Story


@dataclass(frozen=True)
class FeedbackSignal:
    """What the votes say, ready for ranking (see the module docstring)."""

    #: Source -> {voted story id: its net votes}, for the stories that came from it.
    source_votes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: Unit vectors (one per row) of the stories voted up on balance, and down.
    liked: np.ndarray | None = None
    disliked: np.ndarray | None = None
    #: Weight of the similarity part.
    similarity_weight: float = 1.0
    #: Furthest a source's weight can move, as a fraction (0.5: between x0.5 and x1.5).
    spread: float = 0.5
    #: Net votes at which a source has moved about three quarters of the way (tanh(1)).
    softness: float = 5.0

    def source_factor(self, source: str, story_id: str | None = None) -> float:
        """The multiplier of ``source``'s weight, leaving out ``story_id``'s own votes."""
        votes = self.source_votes.get(source, {})
        net = sum(v for sid, v in votes.items() if sid != story_id)
        return 1.0 + self.spread * math.tanh(net / self.softness)

    def similarity(self, vector: np.ndarray | None) -> float:
        """The ``feedback`` part of a story with this vector (0 without a vector)."""
        if vector is None:
            return 0.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            return 0.0
        unit = np.asarray(vector, dtype=np.float32) / norm
        return self.similarity_weight * (_closest(self.liked, unit) - _closest(self.disliked, unit))


def feedback_signal(
    votes: Mapping[str, int],
    stories: Iterable[Story],
    vectors: Mapping[str, np.ndarray],
    similarity_weight: float = 1.0,
) -> FeedbackSignal:
    """The signal from net votes per story id, the voted stories and their vectors.

    Votes on stories that are not given (no longer stored) still count through
    their vector if it is given; stories with a net of 0 count for nothing.
    """
    source_votes: dict[str, dict[str, int]] = {}
    for story in stories:
        net = votes.get(story.id, 0)
        if net:
            for source in story.sources:
                source_votes.setdefault(source, {})[story.id] = net
    ids = sorted(votes)  # a stable order: the same votes give the same signal
    return FeedbackSignal(
        source_votes=source_votes,
        liked=_unit_rows([vectors[i] for i in ids if votes[i] > 0 and i in vectors]),
        disliked=_unit_rows([vectors[i] for i in ids if votes[i] < 0 and i in vectors]),
        similarity_weight=similarity_weight,
    )


def _unit_rows(vectors: list[np.ndarray]) -> np.ndarray | None:
    if not vectors:
        return None
    rows = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def _closest(rows: np.ndarray | None, unit: np.ndarray) -> float:
    """The highest cosine similarity of ``unit`` to any row, floored at 0."""
    if rows is None or rows.shape[1] != unit.shape[0]:
        return 0.0
    return max(0.0, float(np.max(rows @ unit)))
