"""An ``/ask`` answer as Discord messages: split between sentences, then the citations as
numbered links, every message within Discord's 2,000 characters. Scraped text cannot
ping anyone."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tracker.deliver.discord import (
    CONTENT_LIMIT,
    ELLIPSIS,
    DiscordMessage,
    clean,
    escape_markdown_and_mentions,
    len16,
    link_markdown,
    shorten,
)

_ANSWER_SENTENCE = re.compile(r"(?<=[.!?\]])\s+")


def render_answer(text: str, citations: Sequence[tuple[int, str, str]]) -> list[DiscordMessage]:
    """An answer as messages of at most 2,000 characters, split between sentences (never
    inside one unless a single sentence is longer than a message), then its citations as
    numbered links. ``citations`` are (n, title, url). Scraped text cannot ping anyone."""
    sentences = [escape_markdown_and_mentions(s) for s in _ANSWER_SENTENCE.split(clean(text)) if s]
    lines = [f"[{n}] {shorten(title, 200)} {link_markdown(url)}" for n, title, url in citations]
    # Each unit with the separator that goes before it when it shares a message.
    units = [(s, " ") for s in sentences] + [
        (line, "\n\n" if k == 0 else "\n") for k, line in enumerate(lines)
    ]
    return [DiscordMessage(content=m) for m in pack(units)]


def pack(units: Iterable[tuple[str, str]], limit: int = CONTENT_LIMIT) -> list[str]:
    """Pieces of text joined into as few messages as fit ``limit``, in order; each piece
    comes with the separator that goes before it when it shares a message. A piece never
    straddles two messages unless it is longer than one, when it is cut at words."""
    messages: list[str] = []
    current = ""
    for unit, separator in units:
        for part in _fit_pieces(unit, limit):
            joined = f"{current}{separator}{part}" if current else part
            if len16(joined) <= limit:
                current = joined
            else:
                messages.append(current)
                current = part
    if current:
        messages.append(current)
    return messages


def _fit_pieces(piece: str, limit: int) -> list[str]:
    """A piece that fits a message as it is, or cut at words into pieces that do."""
    if len16(piece) <= limit:
        return [piece]
    out = []
    rest = piece
    while len16(rest) > limit:
        head = shorten(rest, limit, render=lambda s: s).removesuffix(ELLIPSIS)
        if not head:
            head = rest[: limit // 2]
        out.append(head)
        rest = rest[len(head) :].lstrip()
    return [*out, rest] if rest else out
