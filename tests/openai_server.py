"""One fake OpenAI-compatible server for every test that talks to an LLM or an embedding API.

The project talks to one external service here (an OpenAI-compatible HTTP API, for chat
completions and for embeddings), so the tests have one fake of it, not one per test file:
what the real API looks like on the wire (paths, status codes, error bodies, keep-alive,
Content-Length) is written down once. It is a real HTTP server on 127.0.0.1, no mocks;
tests take it as the ``openai_server`` fixture (tests/conftest.py), or construct it
themselves where a fixture does not fit (it is also a context manager).

What it answers (set the attributes at any time, or pass them to the constructor):

- ``chat``: the answer to POST /v1/chat/completions. A string (a completion saying it),
  a ``Reply`` (any status and JSON body, optionally held), or a callable given the
  request's JSON body and returning either.
- ``embed``: the vector for one text, for POST /v1/embeddings (default ``vector``). The
  answer lists the texts' vectors in reverse order, each with its ``index``.
- ``fail``: a ``Reply`` that answers every request, whatever the path, instead.
- Any other path gets 404 with an OpenAI-style error body.

What it records: ``requests``, a ``Request(path, headers, body)`` per request received
(header names lower-cased, body parsed JSON), whatever was answered.

Where it is: ``base_url`` (``http://127.0.0.1:<port>/v1``, what clients are given) and
``origin`` (without the ``/v1``). ``close()`` releases any held answer and stops it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

import pytest

from tests import loopback_http

#: How many dimensions ``vector`` gives unless told otherwise.
DIMS = 8
#: How long a held answer waits for its event at most.
HOLD_SECONDS = 10.0


def completion(
    content: str | None, finish_reason: str = "stop", model: str = "m"
) -> dict[str, Any]:
    """The JSON body of a chat completion whose one choice says ``content``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def vector(text: str, dims: int = DIMS) -> list[float]:
    """Deterministic and deliberately not unit length (some servers do not normalise)."""
    return [float(len(text) + 1), 3.0] + [float((len(text) * k) % 5) for k in range(dims - 2)]


#: What broken OpenAI-compatible servers have answered with a 200.
GARBAGE = [
    pytest.param(b"\xff\xfe\x00garbage\x80\x81", id="bytes in no encoding"),
    pytest.param(b"<html><body>502 Bad Gateway</body></html>", id="a proxy's page"),
    pytest.param(b'{"object": "list", "data": [{"index": 0, "embeddi', id="half a body"),
    pytest.param(b"", id="nothing"),
    pytest.param({"data": "not a list"}, id="another shape"),
    pytest.param({"choices": [{"message": {"content": 5}}]}, id="a number for text"),
]


@dataclass
class Reply:
    """One answer: a status and a JSON body (bytes are sent as they are: a broken server)."""

    status: int = 200
    body: Any = field(default_factory=lambda: completion("A summary."))
    #: Hold the answer until this is set (timeouts); ``close()`` sets it.
    hold: threading.Event | None = None


@dataclass
class Request:
    """One request as received: its path, its headers (names lower-cased), its JSON body."""

    path: str
    headers: dict[str, str]
    body: Any


ChatAnswer = str | Reply
Chat = ChatAnswer | Callable[[Any], ChatAnswer]


class OpenAIServer:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 (see the module's docstring)."""

    def __init__(
        self,
        chat: Chat | None = None,
        *,
        embed: Callable[[str], list[float]] = vector,
        fail: Reply | None = None,
    ) -> None:
        self.chat: Chat = Reply() if chat is None else chat
        self.embed = embed
        self.fail = fail
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._held: set[threading.Event] = set()
        self.httpd, self.thread = loopback_http.start(lambda r: self._handle(r), "POST")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def close(self) -> None:
        with self._lock:
            held = list(self._held)
        for reply in (self.chat, self.fail):
            if isinstance(reply, Reply) and reply.hold is not None:
                held.append(reply.hold)
        for event in held:
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- answering ---------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        raw = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else {}
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(Request(request.path, headers, body))
        reply = self._reply(request.path, body)
        if reply.hold is not None:
            with self._lock:
                self._held.add(reply.hold)
            reply.hold.wait(HOLD_SECONDS)
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        request.send_response(reply.status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _reply(self, path: str, body: Any) -> Reply:
        if self.fail is not None:
            return self.fail
        if path == "/v1/chat/completions":
            answer = self.chat(body) if callable(self.chat) else self.chat
            return Reply(body=completion(answer)) if isinstance(answer, str) else answer
        if path == "/v1/embeddings":
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": self.embed(text)}
                for i, text in enumerate(texts)
            ]
            data.reverse()  # the index, not the order, says which text a vector is for
            return Reply(body={"object": "list", "data": data, "model": body["model"]})
        return Reply(404, {"error": {"message": f"no route {path}"}})
