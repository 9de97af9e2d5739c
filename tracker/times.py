"""Moments as tracker stores and compares them: aware, in UTC, as ISO 8601 text in SQLite.

One home for the conversions, so every store writes the same text (ISO strings of one
offset compare in time order, which the SQL relies on) and reads it back the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def to_iso(moment: datetime) -> str: ...
@overload
def to_iso(moment: datetime | None) -> str | None: ...
def to_iso(moment: datetime | None) -> str | None:
    """``moment`` in UTC as ISO 8601 text; None stays None."""
    return moment.astimezone(UTC).isoformat() if moment else None


def from_iso(text: str | None) -> datetime | None:
    """What ``to_iso`` wrote; None or "" is None."""
    return datetime.fromisoformat(text) if text else None
