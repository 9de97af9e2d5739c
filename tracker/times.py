"""Moments as tracker stores and compares them (aware, in UTC, as ISO 8601 text in SQLite),
and spans as people write them ("6h", "1d": one parser for sources.yaml, the CLI and the bot).

One home for the conversions, so every store writes the same text (ISO strings of one
offset compare in time order, which the SQL relies on) and reads it back the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import UTC, datetime
from typing import Any, overload

from pydantic_core import PydanticCustomError


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


_INTERVAL_PART = re.compile(r"(\d+)\s*([smhd])")


_INTERVAL = re.compile(r"^\s*(\d+\s*[smhd]\s*)+$")


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(value: Any) -> dt.timedelta:
    """``30m``, ``6h``, ``1d`` or ``1h30m`` as a timedelta."""
    if isinstance(value, dt.timedelta):
        return value
    text = str(value)
    if not _INTERVAL.match(text):
        raise PydanticCustomError(
            "interval",
            "'{value}' is not an interval",
            {
                "value": text,
                "fix": "write a number and a unit (s, m, h or d), such as 30m, 6h or 1d",
            },
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _INTERVAL_PART.findall(text))
    if seconds > 365 * 86400:
        raise PydanticCustomError(
            "interval",
            "'{value}' is longer than a year",
            {"value": text, "fix": "use at most 365d, or set enabled: false to pause the source"},
        )
    if seconds < 60:
        raise PydanticCustomError(
            "interval",
            "'{value}' is shorter than a minute",
            {"value": text, "fix": "use 1m or more; sources rarely change faster than that"},
        )
    return dt.timedelta(seconds=seconds)
