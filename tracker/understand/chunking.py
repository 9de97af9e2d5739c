"""Cutting long texts into chunks an embedding model can take whole. Pure functions.

all-MiniLM-L6-v2 reads at most 256 word pieces, so a chunk is kept under a
budget of estimated tokens: paragraphs first, then sentences, then words.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tracker.text import SENTENCE_END

#: Estimated tokens per chunk. On real abstracts WordPiece makes 0.93 pieces per estimated
#: token on average (1.06 at the 95th percentile), so 220 stays under the 256 the model reads.
DEFAULT_BUDGET = 220

_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def estimate_tokens(text: str) -> int:
    """Words and punctuation, plus one per 8 characters of long words (they split)."""
    tokens = _TOKEN.findall(text)
    return len(tokens) + sum(len(t) // 8 for t in tokens if len(t) > 8)


def chunk_text(title: str, text: str, budget: int = DEFAULT_BUDGET) -> list[Chunk]:
    """The title and text as chunks; the first starts with the title.

    Paragraphs (lines) are packed together while they fit, separated by a blank line; a
    paragraph too long for one chunk is split at sentence ends, and a sentence too long at
    word boundaries.
    """
    pieces: list[str] = []
    # Every line is a paragraph: texts that break paragraphs with one newline (papers'
    # full texts) keep their headings apart from the sentences around them.
    for paragraph in text.strip().split("\n"):
        paragraph = " ".join(paragraph.split())
        if paragraph:
            pieces.extend(_fit(paragraph, budget))
    head = " ".join(title.split())
    chunks: list[str] = []
    current = head
    for piece in pieces:
        joined = f"{current}\n\n{piece}" if current else piece
        if current and estimate_tokens(joined) > budget:
            chunks.append(current)
            current = piece
        else:
            current = joined
    if current:
        chunks.append(current)
    return [Chunk(i, c) for i, c in enumerate(chunks)]


def _fit(paragraph: str, budget: int) -> list[str]:
    if estimate_tokens(paragraph) <= budget:
        return [paragraph]
    out: list[str] = []
    current = ""
    for sentence in SENTENCE_END.split(paragraph):
        parts = [sentence] if estimate_tokens(sentence) <= budget else _by_words(sentence, budget)
        for part in parts:
            joined = f"{current} {part}".strip()
            if current and estimate_tokens(joined) > budget:
                out.append(current)
                current = part
            else:
                current = joined
    if current:
        out.append(current)
    return out


def _by_words(sentence: str, budget: int) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    size = 0
    for word in sentence.split():
        cost = estimate_tokens(word)
        if current and size + cost > budget:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += cost
    if current:
        out.append(" ".join(current))
    return out
