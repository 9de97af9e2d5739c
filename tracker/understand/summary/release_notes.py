"""Release notes read line by line: which lines matter, and which announce breaking changes.
Pure.

Release notes are lists, not prose: "Breaking: removed the --x flag" must come
first, and "Bump version" or "@someone made their first contribution" never.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracker.understand.prose import (
    BULLET,
    FENCE,
    SPACES,
    URL,
    is_heading,
    is_junk_line,
    strip_inline_markdown,
    strip_line_markers,
)

_SECTION_NAME = re.compile(
    r"^(?:what'?s changed|what'?s new|highlights?|new features?|features?|enhancements?|"
    r"improvements?|bug ?fixes|fixes|fixed|changes|changed|added|other changes|"
    r"documentation|docs|dependencies|dependency updates|deprecations?|breaking changes?|"
    r"breaking|removed|removals?|security|performance|new contributors|contributors|notes?|"
    r"release notes|upgrade notes|upgrading|migration(?: guide| notes)?|known issues|"
    r"misc(?:ellaneous)?|internal|chores?|refactor(?:ing)?|core|models?|hardware|api|"
    r"full changelog)$",
    re.IGNORECASE,
)
#: Strongest signals first: an explicit section beats a line that says "breaking",
#: which beats a line that merely removes or deprecates something.
_BREAKING_STRONG = re.compile(r"\bbreaking\b|\bincompatib\w*", re.IGNORECASE)
_BREAKING_WEAK = re.compile(
    r"\bremov(?:e|es|ed|al)\b|\bdeprecat(?:e|es|ed|ion|ions)\b|\bmigrat(?:ion|e)\b|"
    r"\bno longer (?:supported|available|accepted)\b",
    re.IGNORECASE,
)
BREAKING_PREFIX = re.compile(
    r"^\W*(?:breaking(?: changes?)?|incompatible(?: changes?)?)\W*[:\-–]\s*", re.IGNORECASE
)
_GITHUB_CREDIT = re.compile(
    r"\s+(?:by|from)\s+@[\w-]+(?:\s*(?:,|and)\s*@[\w-]+)*(?:\s+in\s+(?:\S+))?\s*$"
)
_TRAILING_REF = re.compile(
    r"(?:\s*\((?:#\d+|[0-9a-f]{7,40})(?:,\s*(?:#\d+|[0-9a-f]{7,40}))*\))+\s*$"
)
#: "[Bugfix] [Core] Fix x" -> "Fix x": the tags are the project's filing, not the change.
_TAG_PREFIX = re.compile(r"^(?:\[([^\]]{1,30})\]\s*)+")
#: Housekeeping that an engineer reading a digest does not need to hear about first.
_MINOR = re.compile(
    r"^(?:misc|ci|ci/build|build|docs?|documentation|tests?|testing|chores?|internal|style|"
    r"refactor(?:ing)?|typo|deps|dependencies|dependency updates|maintenance|other)$",
    re.IGNORECASE,
)
_SCOPE_PREFIX = re.compile(r"^(\w[\w/-]*)(?:\([^)]*\))?\s?:\s+")
_RELEASE_JUNK = re.compile(
    r"full changelog|made (?:their|his|her|its) first contribution|^\W*@[\w-]+\W*$|"
    r"^\W*(?:v?\d+(?:\.\d+)+\S*|#\d+|[0-9a-f]{7,40})\W*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ReleaseLine:
    text: str
    #: 0 not breaking; 1 mentions a removal, deprecation or migration; 2 says breaking or
    #: incompatible; 3 sits in a section whose heading says so.
    breaking: int
    #: Housekeeping: tests, docs, CI, internal refactors, dependency bumps.
    minor: bool = False


def _heading_text(line: str) -> str | None:
    """The heading's words if ``line`` is a heading in markdown or in plain text."""
    if is_heading(line):
        return strip_inline_markdown(strip_line_markers(line))
    if BULLET.match(line):
        return None
    words = strip_inline_markdown(line)
    bare = re.sub(r"^[^\w]+|[^\w)]+$", "", words)  # emoji, colons, trailing punctuation
    if _SECTION_NAME.match(bare):
        return bare
    if words.endswith(":") and len(words.split()) <= 6:
        return bare
    return None


def _release_line(raw: str) -> tuple[str, bool] | None:
    """One line of release notes as plain text, and whether it is housekeeping; None if junk."""
    line = strip_inline_markdown(strip_line_markers(raw))
    if is_junk_line(line) or _RELEASE_JUNK.search(line):
        return None
    tags = _TAG_PREFIX.match(line)
    minor = bool(tags and any(_MINOR.match(t) for t in re.findall(r"\[([^\]]+)\]", tags[0])))
    line = line[tags.end() :] if tags else line
    scope = _SCOPE_PREFIX.match(line)
    minor = minor or bool(scope and _MINOR.match(scope[1]))
    line = _TRAILING_REF.sub("", _GITHUB_CREDIT.sub("", line))
    line = SPACES.sub(" ", URL.sub("", line)).strip(" ,;")
    if len(line) < 8 or len(line.split()) < 2 or _RELEASE_JUNK.search(line):
        return None
    return line, minor


def breaking_level(line: str, minor: bool) -> int:
    if _BREAKING_STRONG.search(line):
        return 2
    if _BREAKING_WEAK.search(line) and not minor:  # not "[Misc] Remove unused imports"
        return 1
    return 0


def release_lines(text: str) -> list[ReleaseLine]:
    """The change lines of release notes: one per bullet or line, cleaned, headings noted."""
    lines: list[ReleaseLine] = []
    section_breaking = section_minor = skipping = in_fence = False
    for raw in text.splitlines():
        if FENCE.match(raw):
            in_fence = not in_fence
            continue
        if in_fence or not raw.strip():
            continue
        heading = _heading_text(raw)
        if heading is not None:
            section_breaking = bool(
                _BREAKING_STRONG.search(heading) or _BREAKING_WEAK.search(heading)
            )
            section_minor = bool(_MINOR.match(heading))
            # Credits are not changes.
            skipping = bool(re.search(r"contributors|full changelog", heading, re.IGNORECASE))
            continue
        cleaned = None if skipping else _release_line(raw)
        if cleaned is None:
            continue
        line, minor = cleaned
        minor = minor or section_minor
        level = 3 if section_breaking else breaking_level(line, minor)
        lines.append(ReleaseLine(BREAKING_PREFIX.sub("", line), level, minor))
    return lines
