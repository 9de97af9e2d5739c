"""How often one person may use an expensive command: a sliding window per key. Pure.

``/ask`` runs retrieval and maybe an LLM call on the host's machine or account,
so one person (or a script) must not be able to queue unlimited work. The clock
is injected so a test can walk time forward without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable


class SlidingWindow:
    """At most ``limit`` uses per ``key`` within any ``per`` seconds."""

    def __init__(self, limit: int, per: float, clock: Callable[[], float] = time.time):
        if limit < 1 or per <= 0:
            raise ValueError("a rate limit needs limit >= 1 and per > 0")
        self.limit = limit
        self.per = per
        self.clock = clock
        self._uses: dict[Hashable, deque[float]] = {}

    def acquire(self, key: Hashable) -> float | None:
        """Count one use by ``key`` and return None, or, when ``key`` is over the limit,
        count nothing and return the clock time at which it may go again."""
        now = self.clock()
        uses = self._uses.setdefault(key, deque())
        while uses and uses[0] <= now - self.per:
            uses.popleft()
        if len(uses) >= self.limit:
            return uses[0] + self.per
        uses.append(now)
        self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        # Keys whose every use has left the window would otherwise stay forever.
        if len(self._uses) < 1024:
            return
        for key in [k for k, u in self._uses.items() if not u or u[-1] <= now - self.per]:
            del self._uses[key]
