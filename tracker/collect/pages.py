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

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tracker.errors import HTTPStatusError, SourceError
from tracker.models import HostWait, PageTask
from tracker.times import utcnow


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


#: Answers about one page (it is not there), not about the host refusing us.
PAGE_GONE = (404, 410)


def page_failure(exc: SourceError) -> PageFailure:
    """How a failed page request is treated: permanent answers give up at once; a host
    that refuses (401, 403, 429, 5xx, no connection) counts towards pausing it."""
    refused = exc.status not in PAGE_GONE if isinstance(exc, HTTPStatusError) else exc.transient
    return PageFailure(
        str(exc), permanent=not exc.transient, host_refused=refused, retry_after=exc.retry_after
    )


@dataclass(frozen=True)
class PagePolicy:
    """Exponential backoff per page: 1 h, 4 h, 16 h, then the teaser is kept for good."""

    max_attempts: int = 4
    first_delay: timedelta = timedelta(hours=1)
    factor: int = 4

    def give_up(self, task: PageTask, reason: str) -> PageTask:
        """Keep the teaser for good without asking (the host is given up)."""
        return replace(task, last_error=reason, next_attempt=None, gave_up=True)

    def after_failure(self, task: PageTask, failure: PageFailure, now: datetime) -> PageTask:
        attempts = task.attempts + 1
        gave_up = failure.permanent or attempts >= self.max_attempts
        delay = self.first_delay * self.factor ** (attempts - 1)
        if failure.retry_after is not None:
            # The host said when to come back: then, not later. It still counts as an
            # attempt, so a page that answers 429 for ever is given up like any other.
            delay = failure.retry_after
        return replace(
            task,
            attempts=attempts,
            last_error=failure.message,
            last_attempt=now,
            next_attempt=None if gave_up else now + delay,
            gave_up=gave_up,
        )


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
    among the sources that said (``want``) how many they are waiting for.

    A host that refuses ``refusals_per_run`` pages in a run, none fetched, gets a strike
    and no page request for a while: 1 h, then 4 h, then 16 h. At the fourth strike in a
    row, about a day after the first, its pages keep their teasers for good (``given_up``),
    so that a dead or paywalled site costs a dozen requests, not four per page it ever
    linked. A page fetched from the host clears its strikes. Feeds are never paused here.
    """

    def __init__(
        self,
        now: Callable[[], datetime] = utcnow,
        waits: Iterable[HostWait] = (),
        pages_per_host: int = 20,
        refusals_per_run: int = 3,
        first_pause: timedelta = timedelta(hours=1),
        pause_factor: int = 4,
        strikes_to_give_up: int = 4,
        given_up_for: timedelta = timedelta(days=7),
    ):
        self.now = now
        self.pages_per_host = pages_per_host
        self.refusals_per_run = refusals_per_run
        self.first_pause = first_pause
        self.pause_factor = pause_factor
        self.strikes_to_give_up = strikes_to_give_up
        self.given_up_for = given_up_for
        self._lock = threading.Lock()
        self._waits = {(w.host, w.pages_only): w for w in waits}
        self._new_waits: dict[tuple[str, bool], HostWait] = {}
        self._cleared: set[str] = set()
        self._refusals: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._fetched: set[str] = set()
        self._demand: dict[str, dict[str, int]] = {}
        self._taken: Counter[tuple[str, str]] = Counter()
        self._taken_host: Counter[str] = Counter()

    # --- waiting, kept across runs ----------------------------------------------

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
        """The host asked us (Retry-After) not to come back for ``for_``: for everything
        when a feed's request was answered so, for pages when a page's was (a page's
        answer never keeps a feed from being collected)."""
        with self._lock:
            current = self._waits.get((host, pages_only))
            strikes = current.strikes if current is not None and pages_only else 0
            return self._set_locked(HostWait(host, self.now() + for_, reason, pages_only, strikes))

    def _set_locked(self, wait: HostWait) -> HostWait:
        key = (wait.host, wait.pages_only)
        current = self._waits.get(key)
        if current is None or current.until < wait.until or current.strikes < wait.strikes:
            self._waits[key] = wait
            self._new_waits[key] = wait
        return self._waits[key]

    def changes(self) -> tuple[list[HostWait], list[str]]:
        """Waits set since the last call, and hosts whose page pause a fetched page lifted:
        what the state store keeps for the next runs."""
        with self._lock:
            fresh = list(self._new_waits.values())
            cleared = sorted(self._cleared)
            self._new_waits.clear()
            self._cleared.clear()
        return fresh, cleared

    # --- asking a host for pages: refusals and strikes ----------------------------------

    def begin(self, source: str, host: str) -> bool:
        """Whether ``source`` may ask ``host`` for a page now; if so, the request counts as
        in flight until ``end``. Until a page has come from the host this run, requests in
        flight count as refusals to come: a dead host is asked three times per run, not
        three times plus one per worker thread."""
        if self.closed(host):
            return False
        with self._lock:
            if host not in self._fetched and (
                self._refusals[host] + self._in_flight[host] >= self.refusals_per_run
            ):
                return False
            if not self._take_locked(source, host):
                return False
            self._in_flight[host] += 1
            return True

    def held_by_flight(self, host: str) -> bool:
        """Whether ``begin`` refuses ``host`` now only for requests in flight (no page has
        come from it yet this run, and they count as refusals to come): once they end, it
        may say yes."""
        with self._lock:
            refusals, flying = self._refusals[host], self._in_flight[host]
            return (
                host not in self._fetched
                and flying > 0
                and refusals < self.refusals_per_run <= refusals + flying
            )

    def end(self, host: str, fetched: bool, refused: bool) -> None:
        """The request ``begin`` allowed is over: a page came, or the host refused, or
        neither (an answer about that one page)."""
        with self._lock:
            self._in_flight[host] -= 1
            if fetched:
                # Whatever it refused before, the host is not dead: its strikes are cleared.
                self._fetched.add(host)
                if self._waits.pop((host, True), None) is not None:
                    self._cleared.add(host)
                    self._new_waits.pop((host, True), None)
                return
            if not refused:
                return
            self._refusals[host] += 1
            if self._refusals[host] != self.refusals_per_run or host in self._fetched:
                return
            before = self._waits.get((host, True))
            strikes = (before.strikes if before else 0) + 1
            if strikes >= self.strikes_to_give_up:
                pause = self.given_up_for
                reason = f"{host} refused every page asked of it in {strikes} runs over a day"
            else:
                pause = self.first_pause * self.pause_factor ** (strikes - 1)
                reason = f"{host} refused {self.refusals_per_run} pages in a row"
            self._set_locked(
                HostWait(host, self.now() + pause, reason, pages_only=True, strikes=strikes)
            )

    def closed(self, host: str) -> str | None:
        """Why no page is asked of ``host`` now, or None when one may be."""
        wait = self.waiting(host, page=True)
        if wait is not None:
            return f"{wait.reason}; no page asked of it before {wait.until:%Y-%m-%d %H:%M} UTC"
        with self._lock:
            refusals = self._refusals[host]
        if refusals >= self.refusals_per_run:
            return f"{host} refused {refusals} pages this run"
        return None

    def given_up(self, host: str) -> str | None:
        """Why pages of ``host`` that failed before keep their teasers for good, if they do
        (a page never asked for waits for the host's pause to end instead)."""
        wait = self.waiting(host, page=True)
        if wait is not None and wait.pages_only and wait.strikes >= self.strikes_to_give_up:
            return wait.reason
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
        """Whether ``source`` may ask ``host`` for one more page this run (the budget only;
        ``begin`` also checks that the host is open)."""
        with self._lock:
            return self._take_locked(source, host)

    def _take_locked(self, source: str, host: str) -> bool:
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
