"""What the crowd thinks of a story: its votes, on each community's own scale. Pure.

Votes mean different things in different places: 50 points is a good day on
Hacker News, 50 upvotes is a top pick on Daily Papers, and 50 on r/LocalLLaMA is
a quiet post. Each community's votes are log-scaled against what counts as a
hit there (its kind's ``VoteScale``), so the part saturates (a thousand points is
not ten times a hundred), and a story voted up in several communities combines
them like independent chances: ``1 - (1 - a)(1 - b)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from tracker.config.kinds import VoteScale, kinds
from tracker.models import Engagement

#: Votes at which a story is a hit in a community whose kind gives no scale.
DEFAULT_HIT = 300


def _scale(community: str) -> VoteScale:
    """How votes count where they were cast (the kind of source they came with)."""
    kind = kinds().get(community)
    if kind is not None and kind.votes is not None:
        return kind.votes
    return VoteScale(community, "votes", DEFAULT_HIT)


def popularity(engagement: Mapping[str, Engagement]) -> float:
    """0 (nobody voted) to 1 (a hit somewhere)."""
    miss = 1.0
    for community, e in engagement.items():
        hit = _scale(community).hit
        miss *= 1.0 - min(1.0, math.log1p(e.votes) / math.log1p(hit))
    return 1.0 - miss


def describe(engagement: Mapping[str, Engagement]) -> str:
    """ "312 points and 45 comments on Hacker News; 87 upvotes on Hugging Face"."""
    said = []
    for community, e in sorted(engagement.items(), key=lambda kv: -kv[1].votes):
        scale = _scale(community)
        text = f"{e.votes:,} {scale.votes}"
        if e.comments:
            text += f" and {e.comments:,} comment{'' if e.comments == 1 else 's'}"
        said.append(f"{text} on {scale.community}")
    return "; ".join(said)
