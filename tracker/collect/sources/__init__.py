"""Collectors: one module per source kind, behind one small interface.

``COLLECTORS`` maps the ``kind:`` written in ``sources.yaml`` to the collector
for it; a test or a plugin can swap one in.
"""

from __future__ import annotations

from tracker.collect.sources.arxiv import ArxivCollector
from tracker.collect.sources.base import CollectContext, Collector
from tracker.collect.sources.feed import FeedCollector
from tracker.collect.sources.github import GitHubReleasesCollector
from tracker.collect.sources.hackernews import HackerNewsCollector
from tracker.collect.sources.hf_papers import HFPapersCollector
from tracker.collect.sources.reddit import RedditCollector

COLLECTORS: dict[str, Collector] = {
    "arxiv": ArxivCollector(),
    "feed": FeedCollector(),
    "github_releases": GitHubReleasesCollector(),
    "hf_papers": HFPapersCollector(),
    "hackernews": HackerNewsCollector(),
    "reddit": RedditCollector(),
}

__all__ = ["COLLECTORS", "CollectContext", "Collector"]
