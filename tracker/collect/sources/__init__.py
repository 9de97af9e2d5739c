"""Collectors: one module per source kind, each ending with the ``KIND`` it declares.

``BUILT_IN`` is the registry of the kinds tracker ships with, a line each: a new kind is
its module and its line here (``tracker.config.kinds`` reads this list on first use).
"""

from __future__ import annotations

from typing import cast

from tracker.collect.sources import arxiv, feed, github, hackernews, hf_papers, reddit
from tracker.collect.sources.base import CollectContext, Collector
from tracker.config.kinds import SourceKind, kind_of

BUILT_IN: tuple[SourceKind, ...] = (
    arxiv.KIND,
    feed.KIND,
    github.KIND,
    hf_papers.KIND,
    hackernews.KIND,
    reddit.KIND,
)


def collector_for(kind: str) -> Collector:
    """The collector of the kind called ``kind`` (KeyError when there is none)."""
    return cast(Collector, kind_of(kind).collector)


__all__ = ["BUILT_IN", "CollectContext", "Collector", "collector_for"]
