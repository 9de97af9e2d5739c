"""What the crowd thinks of a story: its votes, on each community's own scale. Pure.

Votes mean different things in different places: 50 points is a good day on
Hacker News, 50 upvotes is a top pick on Daily Papers, and 50 on r/LocalLLaMA is
a quiet post. Each community's votes are log-scaled against what counts as a
hit there, so the part saturates (a thousand points is not ten times a hundred),
and a story voted up in several communities combines them like independent
chances: ``1 - (1 - a)(1 - b)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from tracker.models import Engagement

#: Votes at which a story is a community's hit and popularity is full. Rough
#: top-of-the-day figures: an HN front-page story has 100-500 points, a Daily Papers
#: pick 20-150 upvotes, a top post of the day on r/LocalLLaMA 300-1,500.
HIT_VOTES: dict[str, int] = {"hackernews": 300, "hf_papers": 100, "reddit": 1000}
DEFAULT_HIT = 300

#: How each community names its votes, for people.
_NAMES: dict[str, tuple[str, str]] = {
    "hackernews": ("Hacker News", "points"),
    "hf_papers": ("Hugging Face", "upvotes"),
    "reddit": ("Reddit", "upvotes"),
}


def popularity(engagement: Mapping[str, Engagement]) -> float:
    """0 (nobody voted) to 1 (a hit somewhere)."""
    miss = 1.0
    for community, e in engagement.items():
        hit = HIT_VOTES.get(community, DEFAULT_HIT)
        miss *= 1.0 - min(1.0, math.log1p(e.votes) / math.log1p(hit))
    return 1.0 - miss


def describe(engagement: Mapping[str, Engagement]) -> str:
    """ "312 points and 45 comments on Hacker News; 87 upvotes on Hugging Face"."""
    said = []
    for community, e in sorted(engagement.items(), key=lambda kv: -kv[1].votes):
        where, votes = _NAMES.get(community, (community, "votes"))
        text = f"{e.votes:,} {votes}"
        if e.comments:
            text += f" and {e.comments:,} comment{'' if e.comments == 1 else 's'}"
        said.append(f"{text} on {where}")
    return "; ".join(said)
