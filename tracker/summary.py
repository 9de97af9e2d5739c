"""What a summariser is given and gives back, and the interface every summariser has.

``tracker.extractive`` (offline, the default) and ``tracker.llm_summary`` (any
OpenAI-compatible server) implement it; ``tracker.summarise.make_summariser``
chooses between them from the settings. Summaries are made once per story and
cached by the caller; no summariser stores anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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


class Embedder(Protocol):
    """The shape of ``tracker.embed.Embedder``, restated so this module never imports it."""

    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32, rows L2-normalised."""
        ...
