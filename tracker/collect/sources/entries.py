"""The shape every feed format is parsed into before it becomes items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.models import content_hash


@dataclass(frozen=True)
class Entry:
    """One feed entry, format-independent; ``content`` and ``summary`` may be HTML."""

    id: str | None
    link: str | None
    title: str
    content: str = ""
    summary: str = ""
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    tags: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return content_hash(
            self.id,
            self.link,
            self.title,
            self.content,
            self.summary,
            self.updated.isoformat() if self.updated else None,
        )


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: list[Entry]
    format: str
    warnings: tuple[str, ...] = ()
