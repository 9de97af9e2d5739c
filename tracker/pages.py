"""Article pages as their own queue: which teaser's page to ask for, when, and how gently.

A feed entry that carries only a teaser wants its article page. Asking for that page
is work with a life of its own, kept in the state store (``storage/pages.py``), so that:

* the feed's conditional GET never depends on pages: an unchanged feed is one 304,
  plus only the pages that are due;
* a page that fails waits on its own clock (1 h, 4 h, 16 h) and after four failures,
  about a day, its item keeps the teaser for good; an answer that will not change
  (401, 403, 404, 410, not a web page, a private address) gives up at once;
* a host is treated as a whole: one that asks us to wait (Retry-After) is not asked
  again before then, one that refuses three pages in a run is not asked again that
  run, and the pages asked of one host in a run are capped and shared fairly among
  the sources waiting on it.

Everything here is pure or in memory; the collector decides, ``storage`` remembers.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tracker.errors import HTTPStatusError, SourceError


def _utcnow() -> datetime:
    return datetime.now(UTC)


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


@dataclass(frozen=True)
class PageTask:
    """One item's article page, as the queue remembers it."""

    item_id: str
    url: str
    attempts: int = 0
    last_error: str | None = None
    last_attempt: datetime | None = None
    #: Not asked for before this; None means due now.
    next_attempt: datetime | None = None
    #: The item keeps its teaser for good.
    gave_up: bool = False

    @property
    def host(self) -> str:
        return host_of(self.url)

    def due(self, now: datetime) -> bool:
        return not self.gave_up and (self.next_attempt is None or self.next_attempt <= now)


@dataclass(frozen=True)
class PageChanges:
    """What one collect did to a source's queue: tasks to write, and items whose page is
    settled (fetched, or no longer wanted)."""

    upsert: tuple[PageTask, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageFailure:
    """Why a page was not fetched, in words, and what that means for asking again."""

    message: str
    #: The answer will not change by asking again (403, 404, not a web page, ...).
    permanent: bool = False
    #: The host refused or failed (counts towards closing the host for the run).
    host_refused: bool = True
    #: The host asked us to wait this long (429 or 503 with Retry-After).
    retry_after: timedelta | None = None


_LEADING_URL = re.compile(r"^\S+://\S+\s+")


def short_reason(message: str) -> str:
    """A page error without the page's address, so that alike errors count together:
    "answered 403 Forbidden (the server refuses access)"."""
    return _LEADING_URL.sub("", message).strip() or message


def page_failure(exc: SourceError) -> PageFailure:
    """How a failed page request is treated: permanent answers give up at once."""
    refused = isinstance(exc, HTTPStatusError) or exc.transient
    return PageFailure(
        str(exc), permanent=not exc.transient, host_refused=refused, retry_after=exc.retry_after
    )


@dataclass(frozen=True)
class PagePolicy:
    """Exponential backoff per page: 1 h, 4 h, 16 h, then the teaser is kept for good."""

    max_attempts: int = 4
    first_delay: timedelta = timedelta(hours=1)
    factor: int = 4

    def after_failure(self, task: PageTask, failure: PageFailure, now: datetime) -> PageTask:
        if failure.retry_after is not None:
            # The host said when to come back: that is not the page's fault.
            return replace(task, last_error=failure.message, next_attempt=now + failure.retry_after)
        attempts = task.attempts + 1
        gave_up = failure.permanent or attempts >= self.max_attempts
        delay = self.first_delay * self.factor ** (attempts - 1)
        return replace(
            task,
            attempts=attempts,
            last_error=failure.message,
            last_attempt=now,
            next_attempt=None if gave_up else now + delay,
            gave_up=gave_up,
        )


@dataclass(frozen=True)
class HostWait:
    """No request to ``host`` before ``until``: it asked (Retry-After), or, ``pages_only``,
    it refused page after page and its article pages are paused (its feed is not)."""

    host: str
    until: datetime
    reason: str
    pages_only: bool = False


def fair_shares(cap: int, demands: Mapping[str, int]) -> dict[str, int]:
    """Split ``cap`` among claimants, max-min fair: nobody gets more than they asked for,
    and what a small claimant leaves is shared by the others (ties broken by name)."""
    shares = dict.fromkeys(demands, 0)
    left = max(0, cap)
    wanting = sorted((d, name) for name, d in demands.items() if d > 0)
    while wanting and left > 0:
        each = left // len(wanting)
        if each == 0:
            for _, name in sorted(wanting, key=lambda w: w[1])[:left]:
                shares[name] += 1
            break
        smallest, name = wanting[0]
        if smallest <= each:
            shares[name] += smallest
            left -= smallest
            wanting = [(d - smallest, n) for d, n in wanting[1:]]
            for _, n in wanting:
                shares[n] += smallest
            left -= smallest * len(wanting)
            wanting = [(d, n) for d, n in wanting if d > 0]
        else:
            for _, n in wanting:
                shares[n] += each
            left -= each * len(wanting)
            wanting = [(d - each, n) for d, n in wanting]
    return shares


class HostBook:
    """What a collect run knows about each host, shared by every source's thread.

    ``pages_per_host`` pages are asked of one host per run, split with ``fair_shares``
    among the sources that said (``want``) how many they are waiting for. A host that
    refuses ``refusals_per_run`` pages is asked for no page for ``refusal_pause``: not
    in this run, nor in the next runs of the hour.
    """

    def __init__(
        self,
        now: Callable[[], datetime] = _utcnow,
        waits: Iterable[HostWait] = (),
        pages_per_host: int = 20,
        refusals_per_run: int = 3,
        refusal_pause: timedelta = timedelta(hours=1),
    ):
        self.now = now
        self.pages_per_host = pages_per_host
        self.refusals_per_run = refusals_per_run
        self.refusal_pause = refusal_pause
        self._lock = threading.Lock()
        self._waits = {(w.host, w.pages_only): w for w in waits}
        self._new_waits: dict[tuple[str, bool], HostWait] = {}
        self._refusals: Counter[str] = Counter()
        self._demand: dict[str, dict[str, int]] = {}
        self._taken: Counter[tuple[str, str]] = Counter()
        self._taken_host: Counter[str] = Counter()

    # --- waiting (Retry-After), kept across runs --------------------------------

    def waiting(self, host: str, page: bool = False) -> HostWait | None:
        """The wait in force for a request to ``host`` (a page request also respects a
        pause of pages), the longest if several."""
        now = self.now()
        with self._lock:
            found = [self._waits.get((host, False))]
            if page:
                found.append(self._waits.get((host, True)))
        live = [w for w in found if w is not None and w.until > now]
        return max(live, key=lambda w: w.until) if live else None

    def wait(self, host: str, for_: timedelta, reason: str, pages_only: bool = False) -> HostWait:
        wait = HostWait(host, self.now() + for_, reason, pages_only)
        key = (host, pages_only)
        with self._lock:
            current = self._waits.get(key)
            if current is None or current.until < wait.until:
                self._waits[key] = wait
                self._new_waits[key] = wait
            return self._waits[key]

    def new_waits(self) -> list[HostWait]:
        """Waits asked for since the last call, to be remembered for the next runs."""
        with self._lock:
            fresh = list(self._new_waits.values())
            self._new_waits.clear()
        return fresh

    # --- refusals, this run only -------------------------------------------------

    def refused(self, host: str) -> None:
        with self._lock:
            self._refusals[host] += 1
            refusals = self._refusals[host]
        if refusals == self.refusals_per_run:
            self.wait(
                host,
                self.refusal_pause,
                f"{host} refused {refusals} pages in a row",
                pages_only=True,
            )

    def closed(self, host: str) -> str | None:
        """Why no page is asked of ``host`` now, or None when one may be."""
        wait = self.waiting(host, page=True)
        if wait is not None:
            return f"{wait.reason}; no page asked of it before {wait.until:%H:%M} UTC"
        with self._lock:
            refusals = self._refusals[host]
        if refusals >= self.refusals_per_run:
            return f"{host} refused {refusals} pages this run"
        return None

    # --- the per-host page budget -------------------------------------------------

    def want(self, source: str, hosts: Mapping[str, int]) -> None:
        """How many pages ``source`` is waiting for from each host this run (replaces what it
        said before; ``{}`` when it is done, so that what it leaves goes to the others)."""
        with self._lock:
            for per_source in self._demand.values():
                per_source.pop(source, None)
            for host, n in hosts.items():
                if n > 0:
                    self._demand.setdefault(host, {})[source] = n

    def take(self, source: str, host: str) -> bool:
        """Whether ``source`` may ask ``host`` for one more page this run."""
        with self._lock:
            if self._taken_host[host] >= self.pages_per_host:
                return False
            demand = dict(self._demand.get(host, {}))
            taken = self._taken[source, host]
            demand[source] = max(demand.get(source, 0), taken + 1)
            if fair_shares(self.pages_per_host, demand)[source] <= taken:
                return False
            self._taken[source, host] += 1
            self._taken_host[host] += 1
            return True
