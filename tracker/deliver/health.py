"""When to tell people that a source is failing, or working again. Pure.

A source that fails once is usually a blip, and tracker retries it with
backoff on its own. After ``FAILING_AFTER`` failures in a row it is worth a
word in the channel, said once; when it recovers, that is said once too.
Which announcements were made is remembered in the state store (``notices``),
so a restart does not repeat them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from storage.state import SourceState
from tracker.deliver.discord import escape_markdown_and_mentions

#: Failures in a row after which a source is announced as failing.
FAILING_AFTER = 2


@dataclass(frozen=True)
class HealthChange:
    source: str
    failing: bool
    #: For the log and the terminal.
    plain: str
    #: For Discord: the parts that come from the web are escaped.
    markdown: str

    @property
    def notice_key(self) -> str:
        return notice_key(self.source)


def notice_key(source: str) -> str:
    return f"failing:{source}"


def health_changes(
    states: Mapping[str, SourceState], sources: Iterable[str], announced: set[str]
) -> list[HealthChange]:
    """Announcements due for ``sources``: newly failing ones, and announced ones that
    recovered. ``announced`` holds the notice keys already made."""
    changes = []
    for name in sources:
        state = states.get(name)
        if state is None:
            continue
        failing = state.consecutive_failures >= FAILING_AFTER
        said = notice_key(name) in announced
        if failing and not said:
            retry = _when(state.next_attempt_after)
            plain = (
                f"Source {name} is failing ({state.consecutive_failures} attempts in a row): "
                f"{state.last_error}. tracker backs off and tries again{retry}."
            )
            markdown = (
                f"⚠️ Source **{escape_markdown_and_mentions(name)}** is failing "
                f"({state.consecutive_failures} attempts in a row): "
                f"{escape_markdown_and_mentions(state.last_error or 'unknown error')}. "
                f"tracker backs off and tries again{retry}; `/sources list` shows its health."
            )
            changes.append(HealthChange(name, True, plain, markdown))
        elif said and state.consecutive_failures == 0:
            plain = f"Source {name} is working again."
            markdown = f"✅ Source **{escape_markdown_and_mentions(name)}** is working again."
            changes.append(HealthChange(name, False, plain, markdown))
    return changes


def _when(moment: datetime | None) -> str:
    return f" after {moment:%Y-%m-%d %H:%M} UTC" if moment else ""
