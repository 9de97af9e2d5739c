"""Logging for the long-running ``tracker serve``: one logfmt line per event, secrets blanked.

Quiet by default: tracker's own lifecycle and job summaries at INFO, libraries
(discord.py, APScheduler, httpx) only when they warn. ``-v`` shows everything.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

_QUIET_LIBRARIES = (
    "discord",
    "apscheduler",
    "httpx",
    "httpcore",
    "chromadb",
    "trafilatura",
    "bm25s",
)
#: Our own loggers; anything else is a library, heard from at WARNING and above only.
_OURS = ("tracker", "bot", "storage", "__main__")


def only_our_chatter(record: logging.LogRecord) -> bool:
    """A library that sets its own logger to DEBUG (bm25s does, at import) must still not
    reach the terminal or a log below WARNING: the filter sits on the handler, so no
    library's own level can get past it."""
    return record.levelno >= logging.WARNING or record.name.split(".")[0] in _OURS


class RedactSecrets(logging.Filter):
    """Blanks the given secrets wherever they would appear in a record: a token must never
    reach a log, even inside an exception message from a library."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            message = f"{message}\n{formatted}"
            record.exc_info = None
            record.exc_text = None
        for secret in self.secrets:
            message = message.replace(secret, "[redacted]")
        record.msg, record.args = message, ()
        return True


class LogfmtFormatter(logging.Formatter):
    """``time=… level=… logger=… msg="…"``: greppable by people, parseable by machines."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = message.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'time={stamp} level={record.levelname.lower()} logger={record.name} msg="{text}"'


def setup(verbose: bool, secrets: Iterable[str], stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    handler.addFilter(RedactSecrets(secrets))
    if not verbose:
        handler.addFilter(only_our_chatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("tracker").setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
