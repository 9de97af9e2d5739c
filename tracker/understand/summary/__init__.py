"""What a summariser is given and gives back, and the interface every summariser has.

``summary.extractive`` (offline, the default) and ``summary.llm`` (any OpenAI-compatible
server) implement it; ``summary.choose.make_summariser`` chooses between them from the
settings. Summaries are made once per story and cached by the caller; no summariser
stores anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class SummaryInput:
    """What a summariser sees for one story."""

    title: str
    #: Main text: an abstract, an article's text, release notes (markdown may remain).
    text: str
    #: "paper" | "post" | "release"
    kind: str
    source: str = ""
    url: str = ""
    #: Vectors already known for some sentences (and the title), e.g. pooled from the
    #: pipeline's own model run over the chunks; those are not embedded again.
    known_vectors: Mapping[str, np.ndarray] | None = field(
        default=None, compare=False, hash=False, repr=False
    )


@dataclass(frozen=True)
class Summary:
    """One or two plain sentences about a story, and how they were made."""

    text: str
    #: "extractive" | "llm"
    method: str
    #: Which LLM wrote it, when method == "llm".
    model: str | None = None
    #: Why the LLM was not used (timeout, 429, error, malformed reply). When set, the
    #: summary is a stand-in and the caller should try again later.
    fallback_reason: str | None = None


class Summariser(Protocol):
    def summarise(self, item: SummaryInput) -> Summary: ...


@runtime_checkable
class SentenceSource(Protocol):
    """A summariser that can say which sentences of a story it will weigh (and how much of
    the text it reads), so that the pipeline can hand it their vectors from its own model
    run instead of it embedding them again."""

    max_input_chars: int

    def sentences(self, text: str) -> list[str]: ...
