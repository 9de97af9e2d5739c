"""A chat model behind any OpenAI-compatible server (OpenAI, Ollama, vLLM).

One client for the answerer and the digest's headline: the same defaults (no retries,
a timeout, temperature 0), and ``failure`` to say in one sentence, without the key, why
a call failed (``tracker.llm.openai_compat``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tracker.llm.openai_compat import UNREADABLE, Server, UnreadableReply


class Chat(Protocol):
    """Any chat model: a system and a user message in, text out (raises on failure)."""

    def complete(self, system: str, user: str) -> str: ...


@dataclass
class OpenAIChat:
    model: str
    api_key: str | None = field(repr=False)
    base_url: str | None
    timeout: float = 30.0
    max_tokens: int = 400

    @property
    def server(self) -> Server:
        return Server(self.base_url, self.api_key)

    def failure(self, exc: BaseException) -> str:
        """Why a call failed, in one sentence without the key."""
        return self.server.failure(exc, self.model, "LLM server", self.timeout)

    def complete(self, system: str, user: str) -> str:
        """The model's reply, stripped ("" when it sent none); raises ``openai.APIError``,
        or ``UnreadableReply`` when the server's answer cannot be read as a completion."""
        try:
            reply = self.server.client(self.timeout).chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                temperature=0,
                max_tokens=self.max_tokens,
            )
            choices = getattr(reply, "choices", None)
            if not isinstance(choices, list):  # a JSON body, but no completion
                raise UnreadableReply("no choices")
            return (choices[0].message.content or "").strip() if choices else ""
        except UNREADABLE as exc:
            raise UnreadableReply(type(exc).__name__) from None
