"""A real HTTP server on 127.0.0.1 for the tests' fakes (feeds and pages, an OpenAI-compatible
API): written once, so every fake speaks HTTP/1.1 the same way and starts the same way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def start(
    handle: Callable[[BaseHTTPRequestHandler], None], *methods: str
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``methods`` (``"GET"``, ``"POST"``) by ``handle(request)`` in background threads;
    the caller shuts the server down."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm on, a kept-
        # alive connection then waits ~40 ms for the client's delayed ACK on every response.
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

    for method in methods:
        setattr(Handler, f"do_{method}", lambda request: handle(request))

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client hanging up mid-answer is what some tests do on purpose

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return httpd, thread
