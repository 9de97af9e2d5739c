"""``digest:`` in ``sources.yaml``: when and how big the digest is, and its routes."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tracker.config.values import (
    FileName,
    Interval,
    Section,
    Strict,
    TimeOfDay,
    Weekday,
    Zone,
    time_of,
)


class RouteSettings(Strict):
    """One destination of digests: which stories, where, how many and how often. Unset
    values come from ``digest:`` (see ``tracker.deliver.routes``)."""

    name: FileName = Field(description="Unique name of the route, such as papers.")
    cadence: Literal["daily", "weekly"] = Field(default="daily", description="daily or weekly.")
    day: Weekday | None = Field(default=None, description="Weekly only: the day (monday).")
    time: TimeOfDay | None = Field(default=None, description="Local time, HH:MM.")
    timezone: Zone | None = Field(default=None, description="IANA zone.")
    size: int | None = Field(default=None, ge=1, le=100, description="Stories in one digest.")
    max_age: Interval | None = Field(
        default=None, description="Oldest news it takes (default: digest.max_age, weekly 7d)."
    )
    channel_id: int | None = Field(default=None, description="Discord channel of this route.")
    file: FileName | None = Field(
        default=None, description="Without Discord: digests/<file>/ (default: the name)."
    )
    sections: list[Section] = Field(
        default_factory=list, description="papers, posts, releases (default: all)."
    )
    tags: list[str] = Field(default_factory=list, description="Stories from sources so tagged.")
    sources: list[str] = Field(default_factory=list, description="Stories from these sources.")

    @model_validator(mode="after")
    def _day_is_weekly(self) -> RouteSettings:
        if self.day is not None and self.cadence != "weekly":
            raise PydanticCustomError(
                "day",
                "day: is only for a weekly route",
                {"fix": "add  cadence: weekly  or remove day:"},
            )
        return self


class DigestSettings(Strict):
    """When and how big the digest is, and where it goes (used by the digest and the bot)."""

    time: TimeOfDay = Field(default="08:00", description="Local time of day, HH:MM.")
    timezone: Zone = Field(default="UTC", description="IANA zone, e.g. Europe/Berlin.")
    size: int = Field(default=10, ge=1, le=100, description="Stories in one digest.")
    channel_id: int | None = Field(default=None, description="Discord channel for the digest.")
    max_age: Interval = Field(
        default=dt.timedelta(days=3),
        description="A story is in a digest only if its newest item is at most this old.",
    )
    routes: list[RouteSettings] = Field(
        default_factory=list,
        description="Several destinations (default: one daily digest to channel_id).",
    )

    @property
    def at(self) -> dt.time:
        return time_of(self.time)

    @property
    def weekday(self) -> int | None:
        """The digest settings' own cadence is daily."""
        return None
