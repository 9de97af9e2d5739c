"""Delivering a digest: through the outbox, with retries, resumable after any failure.

``deliver`` sends the messages of one digest that are still unsent, in order,
and marks each as sent only once the destination accepted it. Outages are
retried with exponential backoff (honouring a server's retry-after); what
needs a person (a missing permission) stops at once with the reason. Whatever
is left is sent by the next call, so a restart neither loses nor repeats a
message.

``FileDestination`` is the destination without Discord: a Markdown file per
day under ``TRACKER_HOME/digests`` and the terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO

from storage.outbox import DigestOutbox, OutboxMessage
from tracker.deliver.render import to_markdown
from tracker.errors import DeliveryError
from tracker.models import Digest
from tracker.services import Destination, Outgoing

log = logging.getLogger(__name__)

#: Runs a blocking outbox call off the event loop: ``await run(fn)`` gives ``fn(outbox)``.
OutboxRunner = Callable[[Callable[[DigestOutbox], Any]], Awaitable[Any]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base: float = 2.0
    cap: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``attempt`` (1-based): the server's word if it gave
        one, else doubling from ``base`` up to ``cap``."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return min(self.cap, self.base * 2 ** (attempt - 1))


@dataclass(frozen=True)
class DeliveryReport:
    digest_id: int
    sent: int
    left: int
    error: str | None = None
    #: Messages the destination will never accept, set aside so the rest went out.
    refused: int = 0

    @property
    def complete(self) -> bool:
        return self.left == 0


async def deliver(
    digest_id: int,
    destination: Destination,
    run: OutboxRunner,
    now: Callable[[], datetime],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stopping: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """Send what is left of digest ``digest_id``; stop at the first message that cannot be
    sent after retries (or when ``stopping``), leaving it and the rest for the next call.

    A message the destination refuses for its content (``refused``) is set aside with
    the reason and the rest go on: one bad message must not hold back every digest after
    it. Any other exception from the destination counts as an outage and is retried.
    """
    remaining: list[OutboxMessage] = await run(lambda o: o.remaining(digest_id))
    sent = refused = 0
    for position, message in enumerate(remaining):
        left = len(remaining) - position
        if stopping():
            return DeliveryReport(digest_id, sent, left, "stopped before sending", refused)
        attempt = 0
        message_id: str | None = None
        while message_id is None:
            try:
                message_id = await destination.send(message.payload, key=message.key)
                break
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a destination's bug, or an outage it did not name
                log.warning("digest %s: sending failed unexpectedly", digest_id, exc_info=True)
                error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            if error.refused:
                log.error(
                    "digest %s: message %d refused (%s); set aside, the rest goes on",
                    digest_id,
                    message.idx + 1,
                    error,
                )
                await run(_refuser(message, str(error), now()))
                refused += 1
                break
            attempt += 1
            if not error.retryable or attempt >= policy.attempts or stopping():
                log.warning(
                    "digest %s: message %d not sent (%s); %d left for the next attempt",
                    digest_id,
                    message.idx + 1,
                    error,
                    left,
                )
                return DeliveryReport(digest_id, sent, left, str(error), refused)
            delay = policy.delay(attempt, error.retry_after)
            log.info("digest %s: %s; retrying in %.0f s", digest_id, error, delay)
            await sleep(delay)
        if message_id is not None:
            await run(_marker(message, message_id, now()))
            sent += 1
    return DeliveryReport(digest_id, sent, 0, None, refused)


def _marker(
    message: OutboxMessage, message_id: str, at: datetime
) -> Callable[[DigestOutbox], bool]:
    return lambda outbox: outbox.mark_sent(message, message_id, at)


def _refuser(message: OutboxMessage, error: str, at: datetime) -> Callable[[DigestOutbox], bool]:
    return lambda outbox: outbox.mark_refused(message, error, at)


class FileDestination:
    """Digests as Markdown files, ``digests/YYYY-MM-DD.md`` in the digest's time zone,
    also printed to the terminal. A second digest on the same day gets ``-2``, ``-3``..."""

    name = "file"

    def __init__(self, folder: Path, zone: tzinfo, out: TextIO | None = None):
        self.folder = folder
        self.zone = zone
        self.out = out if out is not None else sys.stdout

    def render(self, digest: Digest) -> list[Outgoing]:
        day = digest.created.astimezone(self.zone).date().isoformat()
        payload = {"day": day, "markdown": to_markdown(digest)}
        return [Outgoing(payload, tuple(e.story_id for e in digest.entries))]

    async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
        try:
            path = await asyncio.to_thread(self._write, payload["day"], payload["markdown"])
        except OSError as exc:
            raise DeliveryError(
                f"cannot write the digest to {self.folder} ({exc.strerror or exc}); "
                "check that TRACKER_HOME is writable and the disk is not full",
                retryable=True,
            ) from None
        print(payload["markdown"], file=self.out, end="", flush=True)
        print(f"(saved to {path})", file=self.out, flush=True)
        return str(path)

    def _write(self, day: str, text: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{day}.md"
        n = 1
        while path.exists():
            n += 1
            path = self.folder / f"{day}-{n}.md"
        write_atomically(path, text)
        return path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) never sees half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
