"""The values people write in ``sources.yaml`` (an interval, a URL, a time of day, a time
zone, a weekday, a plain name), each parsed once with the message and fix a person needs.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
)
from pydantic_core import PydanticCustomError

from tracker.times import parse_interval

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def check_url(value: Any) -> str:
    """An absolute http(s) URL, kept exactly as written."""
    text = str(value).strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in text
    except ValueError:
        usable = False
    if not usable:
        raise PydanticCustomError(
            "url",
            "'{value}' is not an http(s) URL",
            {"value": text, "fix": "write a full address such as https://example.com/feed.xml"},
        )
    return text


Interval = Annotated[dt.timedelta, BeforeValidator(parse_interval)]
Url = Annotated[str, BeforeValidator(check_url)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matching(pattern: re.Pattern[str], value: Any, what: str, fix: str) -> str:
    text = str(value).strip()
    if not pattern.match(text):
        raise PydanticCustomError(
            "value", "'{value}' is not {what}", {"value": text, "what": what, "fix": fix}
        )
    return text


def check_time(value: Any) -> str:
    """A time of day as 24-hour HH:MM."""
    return _matching(
        _TIME, value, "a time of day", 'write 24-hour HH:MM in quotes, such as "08:00"'
    )


def time_of(text: str) -> dt.time:
    """A checked HH:MM (``check_time``) as a time of day."""
    hour, minute = text.split(":")
    return dt.time(int(hour), int(minute))


def check_zone(value: Any) -> str:
    """An IANA time zone this machine knows."""
    text = str(value).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone",
            "'{value}' is not a known time zone",
            {
                "value": text,
                "fix": "use an IANA name such as UTC, Europe/Berlin or America/New_York",
            },
        ) from None
    return text


def check_weekday(value: Any) -> str:
    """A day of the week by name, full or three letters, any case: ``monday``."""
    text = str(value).strip().lower()
    for day in WEEKDAYS:
        if text in (day, day[:3]):
            return day
    raise PydanticCustomError(
        "day",
        "'{value}' is not a day of the week",
        {"value": str(value), "fix": "write one of " + ", ".join(WEEKDAYS)},
    )


def check_file_name(value: Any) -> str:
    """A plain name (a route's, or its folder of digest files): no path, nothing hidden,
    the same on every system."""
    fix = "use letters, digits, - and _ only, such as papers"
    return _matching(_FILE_NAME, value, "a plain name", fix)


TimeOfDay = Annotated[str, BeforeValidator(check_time)]
Zone = Annotated[str, BeforeValidator(check_zone)]
Weekday = Annotated[str, BeforeValidator(check_weekday)]
FileName = Annotated[str, BeforeValidator(check_file_name)]
Section = Literal["papers", "posts", "releases"]
