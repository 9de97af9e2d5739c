"""The one exception tree of tracker.

Domain code raises these; only the CLI and the bot turn them into sentences
for people. Every message is already written for a person: it says what went
wrong and, where we can tell, what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


class TrackerError(Exception):
    """Base of every error tracker raises on purpose."""


class UserError(TrackerError):
    """A request a person made that cannot be done as asked (an unknown story, a URL that
    is not a feed); the message is shown to them as it is."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file, located as precisely as we can."""

    file: str
    line: int | None
    key: str | None
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" {self.key}:" if self.key else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{where}:{key} {self.message}.{fix}"


class ConfigError(TrackerError):
    """The configuration cannot be used; carries one problem per mistake."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StorageError(TrackerError):
    """The state store cannot be opened or written (permissions, disk, a lock held too long)."""


class SourceError(TrackerError):
    """Collecting one source failed; the run goes on with the others."""

    #: Whether trying again later might help (a 404 will not fix itself; a 503 may).
    transient: bool = True
    #: How long the server asked us to wait (Retry-After), when it said.
    retry_after: timedelta | None = None


class FetchError(SourceError):
    """The request did not produce a usable response (DNS, refused, timeout, TLS), or was
    not sent (a private address, a malformed link, a host that asked us to wait)."""

    def __init__(self, message: str, transient: bool = True, retry_after: timedelta | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class HTTPStatusError(SourceError):
    """The server answered with a 4xx or 5xx status."""

    def __init__(self, message: str, status: int, retry_after: timedelta | None = None):
        super().__init__(message)
        self.status = status
        self.transient = status >= 500 or status in (408, 425, 429)
        self.retry_after = retry_after


class TooLargeError(SourceError):
    """The response was bigger than the size cap."""

    transient = False


class ParseError(SourceError):
    """The response arrived but is not something we can read as the expected format."""

    transient = False


class DeliveryError(TrackerError):
    """A destination (Discord, a file) did not accept a message.

    ``retryable`` outages (5xx, rate limits, timeouts, a dropped connection) are tried
    again with backoff; the others (missing permission, unknown channel) need a person.
    """

    def __init__(
        self,
        message: str,
        retryable: bool,
        retry_after: float | None = None,
        refused: bool = False,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        #: This message will never be accepted (Discord's 400 on its content), but the
        #: destination works: set it aside and send the rest.
        self.refused = refused
