"""The daily digest: which stories go in, in what order and sections. Pure functions.

A digest holds the stories first seen (or updated) since the last digest, best
first, grouped as papers, posts and releases; a story is never sent twice
unless it was updated since. Rendering lives in ``tracker.deliver.render`` (Markdown,
JSON) and ``tracker.deliver.discord`` (Discord messages).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from tracker.models import Digest, DigestEntry, DigestSection, ItemKind, Sent, Story
from tracker.understand.popularity import describe
from tracker.understand.rank import Ranked

#: Section names, in the order a digest shows them.
SECTIONS: tuple[tuple[ItemKind, str], ...] = (
    (ItemKind.PAPER, "Papers"),
    (ItemKind.POST, "Posts"),
    (ItemKind.RELEASE, "Releases"),
)
PINNED = "Breaking changes in your stack"

_BREAKING = ("breaking", "removed", "incompatible")


def select(
    ranked: Sequence[Ranked],
    sent: Sent,
    now: datetime,
    size: int,
    stack: Iterable[str] = (),
    max_age: timedelta | None = None,
) -> Digest:
    """The digest for ``now``: at most ``size`` stories, best first, in sections.

    A story goes in when it is new since the last digest, or was sent before and
    has been updated since (it is then marked as an update), and its newest item is
    at most ``max_age`` old: a feed followed today brings years of posts, and they are
    backlog, not news (stored and searchable, never in a digest, never counted in it).
    A release of a tool in ``stack`` (repo names such as "vllm-project/vllm" or just
    "vllm") whose summary calls out breaking changes is pinned to the top.
    """
    stack_names = {s.lower() for s in stack} | {s.lower().rsplit("/", 1)[-1] for s in stack}
    chosen: list[DigestEntry] = []
    considered = 0
    for r in ranked:
        story = r.story
        if max_age is not None and not fresh(story, now, max_age):
            continue
        previously = sent.stories.get(story.id)
        if previously is not None and not (story.updated and story.last_changed > previously):
            continue
        if previously is None and sent.last_digest and story.last_changed <= sent.last_digest:
            continue  # seen before the last digest and left out then (it was full): old news
        considered += 1
        pin = (
            story.kind is ItemKind.RELEASE
            and _breaking(story.summary)
            and _in_stack(story.title, [m.url for m in story.members], stack_names)
        )
        chosen.append(
            DigestEntry(
                story_id=story.id,
                kind=story.kind,
                title=story.title,
                summary=story.summary,
                sources=tuple(story.sources),
                links=tuple(story.links),
                update=(story.update_note or "updated") if previously is not None else None,
                score=r.score,
                pinned=pin,
                engagement=describe(story.engagement),
            )
        )
    pinned = [e for e in chosen if e.pinned]
    rest = [e for e in chosen if not e.pinned][: max(0, size - len(pinned))]
    sections = []
    if pinned:
        sections.append(DigestSection(PINNED, tuple(pinned)))
    for kind, name in SECTIONS:
        entries = tuple(e for e in rest if e.kind is kind)
        if entries:
            sections.append(DigestSection(name, entries))
    return Digest(
        created=now,
        since=sent.last_digest,
        sections=tuple(sections),
        left_out=considered - len(pinned) - len(rest),
    )


def fresh(story: Story, now: datetime, max_age: timedelta) -> bool:
    """Whether a story is news: its newest item is at most ``max_age`` old, or tracker saw
    it change (an edit, a new version) that recently; the backlog never is."""
    newest = story.newest
    if story.updated and (newest is None or story.last_changed > newest):
        newest = story.last_changed
    return newest is not None and newest >= now - max_age


def _breaking(summary: str | None) -> bool:
    return bool(summary) and any(word in (summary or "").lower() for word in _BREAKING)


def _in_stack(title: str, urls: Sequence[str], stack: set[str]) -> bool:
    if not stack:
        return False
    for url in urls:
        parts = url.lower().split("github.com/", 1)
        if len(parts) == 2:
            repo = "/".join(parts[1].split("/")[:2])
            if repo in stack or repo.rsplit("/", 1)[-1] in stack:
                return True
    return title.lower().split(" ", 1)[0] in stack
