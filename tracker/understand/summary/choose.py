"""Choosing the summariser: extractive and offline by default, an LLM when one is configured.

``tracker.understand.summary`` holds the interface, ``tracker.understand.summary.extractive`` and
``tracker.understand.summary.llm`` the two summarisers.
"""

from __future__ import annotations

from tracker.embedder import Embedder
from tracker.llm.openai_compat import llm_configured
from tracker.understand.summary import Summariser
from tracker.understand.summary.extractive import ExtractiveSummariser
from tracker.understand.summary.llm import OpenAISummariser


def make_summariser(
    embedder: Embedder, model: str | None, api_key: str | None, base_url: str | None
) -> Summariser:
    """Extractive unless an LLM is configured: a model and a key or a base URL (Ollama, vLLM)."""
    extractive = ExtractiveSummariser(embedder)
    if model is None or not llm_configured(model, api_key, base_url):
        return extractive
    return OpenAISummariser(model, api_key, base_url, fallback=extractive)
