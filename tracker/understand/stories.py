"""Stories: which story a new item belongs to. Pure functions of their inputs.

An item joins a story when it names the same thing exactly (its canonical
URL, an arXiv id, a GitHub release) or, failing that, when its embedding is
close enough to a recent story's. Otherwise it starts a story of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from tracker.models import IDENTITY_PREFIXES, Candidate, Item, ItemKind, Match, Plan, identities
from tracker.urls import canonical_url, split_arxiv_id

#: Cosine similarity (of the first chunks, title and opening text) at or above which
#: two items are the same story. Chosen on labelled data by bench/dedupe.py as the best
#: F0.5 (precision counts double: a wrong merge hides a story, a missed one only shows
#: a near duplicate twice); see the README for precision and recall.
DEFAULT_THRESHOLD = 0.98

#: A post that links more distinct papers or releases than this is a round-up,
#: not an announcement of one of them.
MAX_LINKED_THINGS = 2

_ARXIV_LINK = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|arxiv:\s?)"
    r"(\d{4}\.\d{4,5}|[a-z][a-z.-]+/\d{7})(?:v\d+)?",
    re.IGNORECASE,
)
_RELEASE_LINK = re.compile(
    r"github\.com/([\w.-]+/[\w.-]+)/releases/tag/([^\s/?#\"'<>)\]]+)", re.IGNORECASE
)


@dataclass(frozen=True)
class Keys:
    """Exact identities of an item.

    ``strong`` keys name one thing for good (a URL, a paper, a release).
    ``weak`` keys name a line of things (a tool's releases) and only join
    stories seen within the dedupe window, as updates.
    """

    strong: frozenset[str]
    weak: frozenset[str] = frozenset()


def item_keys(item: Item) -> Keys:
    strong = {f"url:{canonical_url(item.url)}"}
    weak: set[str] = set()
    if item.kind is ItemKind.PAPER and item.extra.get("arxiv_id"):
        strong.add(f"arxiv:{item.extra['arxiv_id']}")
    if item.kind is ItemKind.RELEASE and item.extra.get("repo"):
        repo = str(item.extra["repo"]).lower()
        strong.add(f"release:{repo}@{item.extra.get('tag', '')}")
        weak.add(f"repo:{repo}")
    strong |= linked_things(item)
    if item.kind is ItemKind.PAPER and (key := paper_key(item)) is not None:
        strong.add(key)
    return Keys(frozenset(strong), frozenset(weak))


def paper_key(item: Item) -> str | None:
    """A paper's identity without an arXiv id: its title, first author's surname and year.

    Two papers may share a title ("Attention Is All You Need" has namesakes): written by
    others or in another year, they are two stories however alike their embeddings. None
    when the item names no author or no year (nothing to tell namesakes apart by).
    """
    if not item.authors or item.published is None:
        return None
    title = " ".join(re.findall(r"[a-z0-9]+", item.title.lower()))
    names = re.findall(r"[^\W\d_]+", item.authors[0].lower())
    if not title or not names:
        return None
    # "Smith, J." and "J. Smith" name the same surname.
    surname = names[0] if "," in item.authors[0] else names[-1]
    return f"paper:{title}|{surname}|{item.published.year}"


def linked_things(item: Item) -> set[str]:
    """Papers and releases the item points at, when it points at one or two of them.

    The item's own URL counts, so an arXiv pdf or versioned link is the paper.
    """
    found: set[str] = set()
    links = [item.url, *[str(u) for u in item.extra.get("links", [])]]
    haystack = "\n".join([*links, item.text])
    for match in _ARXIV_LINK.finditer(haystack):
        paper, _ = split_arxiv_id(match.group(1))
        found.add(f"arxiv:{paper}")
    for repo, tag in _RELEASE_LINK.findall(haystack):
        found.add(f"release:{repo.lower()}@{tag}")
    return found if len(found) <= MAX_LINKED_THINGS else set()


def conflicting(item: frozenset[str], story: frozenset[str]) -> bool:
    """Two different papers (or releases) are two stories, however alike their words."""
    for prefix in IDENTITY_PREFIXES:
        mine = {k for k in item if k.startswith(prefix)}
        theirs = {k for k in story if k.startswith(prefix)}
        if mine and theirs and not mine & theirs:
            return True
    return False


def assign(
    keys: Keys,
    vector: np.ndarray | None,
    key_index: Mapping[str, tuple[str, datetime]],
    candidates: Sequence[Candidate] | CandidatePool,
    now: datetime,
    window: timedelta,
    threshold: float = DEFAULT_THRESHOLD,
) -> Match:
    """The story an item joins: by exact key, by a weak key within the window, by similarity."""
    for key in sorted(keys.strong):
        if key in key_index:
            return Match(key_index[key][0], "key", key=key)
    for key in sorted(keys.weak):
        if key in key_index and key_index[key][1] >= now - window:
            return Match(key_index[key][0], "update", key=key)
    if vector is not None and candidates:
        pool = candidates if isinstance(candidates, CandidatePool) else CandidatePool(candidates)
        mine = identities(keys.strong)
        for candidate, score in pool.above(vector, threshold):
            if candidate.first_seen >= now - window and not conflicting(mine, candidate.identities):
                return Match(candidate.story_id, "similar", similarity=score)
    return Match(None, "new")


class CandidatePool:
    """Recent stories with their vectors stacked once, so matching an item is one product.

    With tens of thousands of stories in the window, stacking them again for every item
    (or checking each in Python) would cost more than embedding the item.
    """

    def __init__(self, candidates: Iterable[Candidate] = ()):
        self._items: list[Candidate] = list(candidates)
        # Stacked once; stories added later (a batch's new ones) are few and kept apart.
        self._base = (
            np.stack([c.vector for c in self._items]).astype(np.float32) if self._items else None
        )

    def __len__(self) -> int:
        return len(self._items)

    def append(self, candidate: Candidate) -> None:
        self._items.append(candidate)

    def above(self, vector: np.ndarray, threshold: float) -> list[tuple[Candidate, float]]:
        """Candidates at least ``threshold`` similar, most similar first."""
        if not self._items:
            return []
        query = np.asarray(vector, dtype=np.float32)
        parts = [self._base @ query] if self._base is not None else []
        extra = self._items[len(self._base) if self._base is not None else 0 :]
        if extra:
            parts.append(np.stack([c.vector for c in extra]).astype(np.float32) @ query)
        scores = np.concatenate(parts)
        hits = np.flatnonzero(scores >= threshold)
        order = hits[np.argsort(-scores[hits], kind="stable")]
        return [(self._items[i], float(scores[i])) for i in order]


def plan(
    item: Item,
    match: Match,
    story_kind: ItemKind | None = None,
    previous_version: int | None = None,
) -> Plan:
    """What placing ``item`` as ``match`` says changes: ``story_kind`` is the kind of the
    story it joins (None for a new one), ``previous_version`` the paper's version there."""
    if match.story_id is None:
        return Plan(match)
    note = update_note(item, match.reason, previous_version)
    release = item.kind is ItemKind.RELEASE and note is not None
    joins_a_post = story_kind is ItemKind.POST and item.kind is not ItemKind.POST
    return Plan(match, take_over=release or joins_a_post, update_note=note)


def edit_plan(item: Item, story_id: str, changed: bool) -> Plan:
    """An item seen before, again: when its words changed upstream, the story is news again."""
    return Plan(Match(story_id, "edit"), update_note=changed_note(item) if changed else None)


def update_note(item: Item, reason: str, previous_version: int | None) -> str | None:
    """What changed, when an item updates a story; None when it merely adds a link."""
    if item.kind is ItemKind.RELEASE and reason == "update":
        return f"new release {item.extra.get('tag', '')}".strip()
    version = item.extra.get("version")
    newer = (
        item.kind is ItemKind.PAPER
        and isinstance(version, int)
        and previous_version is not None
        and version > previous_version
    )
    if newer:
        return f"new version v{version} of the paper"
    return None


def changed_note(item: Item) -> str:
    """What changed when an item already in a story was edited upstream."""
    version = item.extra.get("version")
    if isinstance(version, int) and version > 1:
        return f"new version v{version} of the paper"
    if item.kind is ItemKind.RELEASE:
        return "release notes edited"
    return "updated by its author"
