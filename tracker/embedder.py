"""The one contract every embedder keeps, and the capabilities some add.

``Embedder`` is what callers may rely on (a test's stand-in needs nothing more).
``BatchEmbedder`` is the base implementations build on, after simonw/llm: it checks
the input and splits it into batches, and an implementation only embeds one batch.
Optional abilities are declared Protocols (``SpanEmbedder``), so a caller asks
``isinstance(embedder, SpanEmbedder)`` rather than probing for attributes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors that can be compared with a dot product."""

    #: Stable identity of the model: vectors from embedders with different names are not
    #: comparable (e.g. "local:all-MiniLM-L6-v2-int8").
    name: str

    @property
    def dimensions(self) -> int:
        """Length of every vector, e.g. 384."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimensions), float32, every row L2-normalised, input order."""
        ...


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder that also gives vectors of character spans from the same model run."""

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...


class BatchEmbedder(ABC):
    """Checks and batching shared by every embedder; subclasses embed one batch."""

    name: str
    #: Texts per ``embed_batch`` call; None: all at once (the implementation batches).
    batch_size: int | None = None

    @property
    @abstractmethod
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        size = self.batch_size or len(texts)
        parts = [self.embed_batch(texts[i : i + size]) for i in range(0, len(texts), size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimensions) float32 unit rows for a non-empty batch."""
