"""A thread that owns one resource (a store connection) and runs blocking calls on it.

The bot's event loop must never block: collecting, embedding and SQLite run
here instead. One thread per resource means calls on it happen one at a time,
in the order they were made, which is what a SQLite connection needs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

R = TypeVar("R")
T = TypeVar("T")


class Worker(Generic[R]):
    def __init__(self, name: str, open: Callable[[], R], close: Callable[[R], None] | None = None):
        self.name = name
        self._open = open
        self._close = close
        self._resource: R | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()

    def _call(self, fn: Callable[[R], T]) -> T:
        if self._resource is None:
            self._resource = self._open()  # on the worker's own thread, on first use
        return fn(self._resource)

    async def run(self, fn: Callable[[R], T]) -> T:
        """``fn(resource)`` on the worker's thread, awaited without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def shutdown(self) -> None:
        """Let the call in progress finish, drop queued ones, then release the resource."""
        with self._lock:
            self._pool.shutdown(wait=True, cancel_futures=True)
            if self._resource is not None and self._close is not None:
                self._close(self._resource)
            self._resource = None


class Stopping(Exception):
    """Raised inside a blocking job when the runtime is shutting down."""
