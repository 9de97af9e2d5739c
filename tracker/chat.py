"""A chat model behind any OpenAI-compatible server (OpenAI, Ollama, vLLM).

One client for the answerer and the digest's headline: the same defaults (no retries,
a timeout, temperature 0) and the same ``openai`` errors for callers to turn into reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Chat(Protocol):
    """Any chat model: a system and a user message in, text out (raises on failure)."""

    def complete(self, system: str, user: str) -> str: ...


@dataclass
class OpenAIChat:
    model: str
    api_key: str | None
    base_url: str | None
    timeout: float = 30.0
    max_tokens: int = 400

    def complete(self, system: str, user: str) -> str:
        """The model's reply, stripped ("" when it sent none); raises ``openai.APIError``."""
        import openai

        client = openai.OpenAI(
            api_key=self.api_key or "unused",
            base_url=self.base_url or "https://api.openai.com/v1",
            timeout=self.timeout,
            max_retries=0,
        )
        reply = client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=0,
            max_tokens=self.max_tokens,
        )
        return (reply.choices[0].message.content or "").strip() if reply.choices else ""
