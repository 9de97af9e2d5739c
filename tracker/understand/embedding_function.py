"""Chroma's view of an embedder, so that a collection remembers the model that built it.

Registered with Chroma under the name "tracker": a collection created with it stores the
model spec, and any process that has imported this module can query that collection by
text without being handed the model. It lives here, beside ``make_embedder``, rather than
in ``storage``: rebuilding an embedder from its spec is the embedding stage's knowledge,
and the vector store is only handed the function.
"""

from __future__ import annotations

import os
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from tracker.embedder import Embedder
from tracker.understand.embed import LocalMiniLM, make_embedder


@register_embedding_function
class TrackerEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of an ``Embedder``.

    A collection created with it stores ``get_config()`` (the model spec and base URL, never
    a key); Chroma rebuilds it in any process that has imported this module through
    ``build_from_config``, which takes the key from ``OPENAI_API_KEY`` (Chroma gives it no
    other way in).
    """

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder: Embedder = embedder if embedder is not None else LocalMiniLM()

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return self(input)  # MiniLM and OpenAI's models embed queries like documents

    @staticmethod
    def name() -> str:
        return "tracker"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        # Rows are unit length, so all three order neighbours the same way.
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        spec = getattr(self.embedder, "spec", None)
        if not isinstance(spec, str):
            raise ValueError(
                f"{self.embedder!r} has no model spec that make_embedder can rebuild, so a "
                "collection cannot remember it"
            )
        return {"model": spec, "base_url": getattr(self.embedder, "base_url", None)}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> TrackerEmbeddingFunction:
        TrackerEmbeddingFunction.validate_config(config)
        embedder = make_embedder(
            config["model"], os.environ.get("OPENAI_API_KEY"), config.get("base_url")
        )
        return TrackerEmbeddingFunction(embedder)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config.get("model"), str):
            raise ValueError(f"tracker embedding config needs a 'model' string, got {config!r}")

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        if "model" in new_config and new_config["model"] != old_config.get("model"):
            raise ValueError(
                "a collection's embedding model cannot change: vectors from two models are not "
                "comparable. Re-embed into a new collection instead"
            )
