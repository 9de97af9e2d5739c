"""Every call tracker makes to an OpenAI-compatible server (OpenAI, Ollama, vLLM, LM Studio).

The embedder, the summariser, the answerer and the headline all talk to such a
server; this is the one place that decides whether one is configured, builds
the client (a timeout, no hidden retries: callers decide when to try again),
says in one sentence what went wrong, and keeps keys out of every sentence
(servers echo keys back: "Incorrect API key provided: sk-...").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracker.urls import origin

if TYPE_CHECKING:
    import openai

OPENAI_BASE_URL = "https://api.openai.com/v1"

#: Anything shaped like an OpenAI key, whoever's it is.
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}")


class UnreadableReply(Exception):
    """The server answered, but not with what the API promises: not JSON, JSON of another
    shape, bytes in no encoding (a proxy's error page, a half-written body, a wrong port)."""


#: What reading such a reply raises in the client or in our code (UnicodeDecodeError and
#: json's JSONDecodeError are ValueErrors).
UNREADABLE = (ValueError, TypeError, AttributeError, KeyError, IndexError)


def llm_configured(model: str | None, api_key: str | None, base_url: str | None) -> bool:
    """A chat model is configured: a model name, and a key (OpenAI) or a server of one's own
    (Ollama and vLLM need no key)."""
    return bool(model) and bool(api_key or base_url)


@dataclass(frozen=True)
class Server:
    """An OpenAI-compatible API root and its key (None: OpenAI's root; no key for a local
    server)."""

    base_url: str | None
    api_key: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return (self.base_url or OPENAI_BASE_URL).rstrip("/")

    @property
    def where(self) -> str:
        """scheme://host:port, for messages."""
        return origin(self.url)

    def client(self, timeout: float, max_retries: int = 0) -> openai.OpenAI:
        import openai  # here: the offline path should not pay for importing it

        # Local servers take any key, but the client insists on one. The key is never read
        # from the environment here: Settings does that.
        return openai.OpenAI(
            api_key=self.api_key or "unused",
            base_url=self.url,
            timeout=timeout,
            max_retries=max_retries,
        )

    def redact(self, text: str) -> str:
        """``text`` without the key (or anything shaped like one), on one line, short."""
        if self.api_key and len(self.api_key) >= 6:  # shorter is a placeholder, not a secret
            text = text.replace(self.api_key, "[redacted]")
        text = " ".join(_KEY_LIKE.sub("[redacted]", text).split())
        return text if len(text) <= 200 else text[:199] + "…"

    def failure(self, exc: BaseException, model: str, role: str, timeout: float) -> str:
        """What went wrong calling ``role`` ("LLM server", "embedding server"), in one
        sentence with what to do where a person can help; never the key."""
        import openai

        at = f"the {role} at {self.where}"
        if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError: a subclass
            return f"{at} did not answer within {timeout:g} s"
        if isinstance(exc, openai.APIConnectionError):
            return f"could not reach {at}"
        if isinstance(exc, openai.APIStatusError):
            return self._status(exc, model, at)
        if isinstance(exc, openai.APIResponseValidationError | UnreadableReply):
            return f"{at} answered with something that is not an OpenAI-compatible reply ({exc})"
        if isinstance(exc, openai.APIError):
            return f"the request to {at} failed ({type(exc).__name__})"
        return f"the call to {at} failed unexpectedly ({type(exc).__name__})"

    def _status(self, exc: openai.APIStatusError, model: str, at: str) -> str:
        status = exc.status_code
        detail = self.redact(_error_detail(exc.body))
        said = f" ({detail})" if detail else ""
        if status == 401 and not self.api_key:
            return f"{at} wants an API key and none was set{said}; set OPENAI_API_KEY"
        if status == 401:
            return f"{at} refused the API key (401){said}; check OPENAI_API_KEY"
        if status == 403:
            return f"{at} refused access to {model!r} (403){said}"
        if status == 404:
            return (
                f"{at} does not know the model {model!r} (404){said}; check the model name "
                f"and the base URL (for Ollama, run `ollama pull {model}` first)"
            )
        if status == 429:
            if "quota" in detail.lower():
                return f"{at} is rate limiting us (429): the account's quota is used up"
            return f"{at} is rate limiting us (429){said}"
        if status >= 500:
            return f"{at} failed with {status}{said}; it may work again later"
        return f"{at} rejected the request ({status}){said}"


def is_outage(exc: BaseException) -> bool:
    """The server is down or overloaded (unreachable, timed out, 429, 5xx), as opposed to
    having answered and refused this one request."""
    import openai

    if isinstance(exc, openai.APIConnectionError):
        return True
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else 0
    return status == 429 or status >= 500


def _error_detail(body: object) -> str:
    """The server's own short message, if it gave one."""
    message: object = body
    if isinstance(message, dict):  # {"error": {"message": ...}} or already the inner object
        message = message.get("error", message)
    if isinstance(message, dict):
        message = message.get("message") or message.get("code")
    if not isinstance(message, str):
        return ""
    text = " ".join(message.split())
    return text if len(text) <= 160 else text[:159] + "…"
