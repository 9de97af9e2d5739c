"""When a source that failed is tried again: the source's retry policy.

The collector decides and ``storage`` remembers: ``retry_at`` is computed here, from the
failures in a row the store has counted, and the store keeps the moment it is given.
Article pages have a policy of their own, beside this one (``pages.PagePolicy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential, capped: 15 min, 30 min, 1 h, ... up to a day between tries.

    Errors that will not fix themselves soon (a 404, a page that is not a feed)
    start four steps further along: 4 h, then 8 h, then a day.
    """

    base: timedelta = timedelta(minutes=15)
    cap: timedelta = timedelta(hours=24)
    permanent_head_start: int = 4

    def delay(self, failures: int, transient: bool = True) -> timedelta:
        if failures <= 0:
            return timedelta(0)
        steps = failures - 1 + (0 if transient else self.permanent_head_start)
        return min(self.cap, self.base * (2 ** min(steps, 20)))

    def retry_at(
        self,
        failures: int,
        now: datetime,
        transient: bool = True,
        not_before: datetime | None = None,
    ) -> datetime:
        """When to try again after ``failures`` in a row, the last ``now``: never before
        ``not_before`` when the server said when (Retry-After)."""
        retry = now + self.delay(failures, transient)
        return max(retry, not_before) if not_before else retry
