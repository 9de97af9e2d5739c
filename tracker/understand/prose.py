"""Scraped and Markdown text turned into plain sentences. Pure.

Feeds, articles and release notes arrive as Markdown, HTML residue, bullet lists
and code; a summary is one or two plain sentences. These helpers strip markup,
drop lines that are not prose (code, tables, rules, bare links), rejoin
sentences that a line break split, and cut text at a word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s+|$)")
BULLET = re.compile(r"^\s*(?:[-*+•·▪‣◦–]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")
_BULLET_ONLY = re.compile(r"^\s*(?:[-*+•·▪‣◦–]|\d{1,3}[.)])\s*$")
BLOCKQUOTE = re.compile(r"^\s*(?:>\s?)+")
_RULE = re.compile(r"^\s*(?:[-*_=]\s*){3,}$")
_TABLE = re.compile(r"^\s*\|")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^()\s]*\))*\)")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^>\s]+)>")
_STRONG = re.compile(r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*]+?)(?<=[^\s*])\*(?![\w*])")
_BACKTICKS = re.compile(r"`+")
URL = re.compile(r"(?:https?://|www\.)\S+")
_URL_ONLY = re.compile(r"^\s*<?(?:https?://|www\.)\S+>?\s*$")
SPACES = re.compile(r"\s+")
_CODE_START = re.compile(
    r"^\s*(?:\$ |>>> |\.\.\. |pip3? install |uv (?:pip|add) |npm |docker |curl |git |"
    r"import \w|from [\w.]+ import |def \w|class \w+[(:]|return\b|#include|//|/\*)"
)
_CODE_CHARS = set("{}[]()<>;=|\\$@&^~")
ENDS_SENTENCE = re.compile(r"[.!?…]['\"”’)\]]*$")

#: A piece that starts like this continues the sentence before it.
_CONTINUATION = re.compile(r"^(?:\(?(?:[ivx]{1,4}|[a-h]|\d{1,2})\)\s|[a-z])")
#: A piece that ends like this is not finished.
_LEADS_ON = re.compile(r"(?:[:;,]|\b(?:and|or|but|either|e\.g\.|i\.e\.|cf\.))$", re.IGNORECASE)

_MIN_SENTENCE_CHARS = 20
_MIN_SENTENCE_WORDS = 4


def strip_inline_markdown(text: str) -> str:
    """Links become their text; emphasis, code ticks and autolink brackets go."""
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = _BACKTICKS.sub("", text)
    return SPACES.sub(" ", text).strip()


def strip_line_markers(line: str) -> str:
    """A markdown line without its heading, bullet or quote marker."""
    line = BLOCKQUOTE.sub("", line)
    line = _HEADING.sub("", line)
    line = BULLET.sub("", line)
    return line.strip().rstrip("#").strip()


def is_heading(line: str) -> bool:
    return bool(_HEADING.match(line))


def is_junk_line(line: str) -> bool:
    """A line that can never be part of a summary: a URL, code, a table, a rule, a lone marker."""
    stripped = line.strip()
    if not stripped:
        return True
    if _URL_ONLY.match(stripped) or _RULE.match(stripped) or _TABLE.match(stripped):
        return True
    if _BULLET_ONLY.match(stripped) or _CODE_START.match(stripped):
        return True
    return _looks_like_code(stripped)


def _looks_like_code(text: str) -> bool:
    letters = sum(c.isalpha() for c in text)
    if letters == 0:
        return True
    symbols = sum(c in _CODE_CHARS for c in text)
    return symbols / len(text) > 0.15


def is_sentence(text: str) -> bool:
    """Long enough and wordy enough to be worth showing someone."""
    if len(text) < _MIN_SENTENCE_CHARS or len(text.split()) < _MIN_SENTENCE_WORDS:
        return False
    without_urls = URL.sub("", text).strip()
    if len(without_urls.split()) < 3:  # "Code: https://..."
        return False
    letters = sum(c.isalpha() for c in without_urls)
    return letters >= 0.5 * len(without_urls) and not _looks_like_code(without_urls)


def _continues(previous: str, piece: str) -> bool:
    """Whether pysbd cut a sentence short: "in either (i) ...; or (ii) ..." split at "(i)"."""
    return bool(_LEADS_ON.search(previous) or _CONTINUATION.match(piece))


def merge_fragments(pieces: Sequence[str]) -> list[str]:
    merged: list[str] = []
    for raw in pieces:
        piece = SPACES.sub(" ", raw).strip()
        if not piece:
            continue
        if merged and _continues(merged[-1], piece):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def as_sentence(text: str) -> str:
    """``text`` ending with a full stop if it does not end a sentence already."""
    text = text.strip().rstrip(",;:–-").rstrip()
    if not text or ENDS_SENTENCE.search(text):
        return text
    return text + "."


def cut_at_word(text: str, max_chars: int) -> str:
    """``text`` at most ``max_chars`` long, cut at a word boundary and ending with "…" if cut."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return "…"[:max_chars]
    head = text[: max_chars - 1]
    if not text[max_chars - 1].isspace():
        # The cut falls inside a word: give the whole word back.
        space = head.rfind(" ")
        if space > 0:
            head = head[:space]
        # else one word longer than max_chars (a giant URL): no boundary to cut at.
    head = head.rstrip().rstrip(",;:–-(").rstrip()
    return head + "…"


def join_within(sentences: Sequence[str], max_chars: int) -> str:
    """As many whole sentences as fit in ``max_chars``; a single long one is cut at a word."""
    kept: list[str] = []
    for sentence in sentences:
        candidate = " ".join([*kept, sentence])
        if len(candidate) > max_chars:
            break
        kept.append(sentence)
    if kept:
        return " ".join(kept)
    return cut_at_word(sentences[0], max_chars) if sentences else ""
