"""Noticing edits to ``sources.yaml`` while ``tracker serve`` runs, by polling.

Polling rather than inotify/FSEvents: no new dependency, it works the same on
every OS and on network and container-mounted folders, and the file is small.
A bad edit never replaces the running configuration: the last good one keeps
running and the mistake is reported once, not on every poll.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracker.config import Config, load_config
from tracker.errors import ConfigError, ConfigProblem

#: The fingerprint of a file that is not there.
_MISSING = "missing"


@dataclass(frozen=True)
class WatchEvent:
    """The file changed: either a new valid ``config``, or the ``error`` that stops it loading.

    ``first_report`` is False when this exact error was already reported since the
    last good configuration, so the caller can log or announce it only once.
    """

    config: Config | None
    error: ConfigError | None
    first_report: bool = True


class ConfigWatcher:
    """Reloads ``path`` when its content changes and keeps the last configuration that loaded.

    A change is a change of content, found by hashing the bytes on every
    check: modification times are not trusted on their own, because an editor
    that saves identical text moves them (no reload wanted) and coarse
    filesystem timestamps can leave them still across a real edit (reload
    wanted). Hashing a file of a few kilobytes each poll costs nothing.
    """

    def __init__(
        self,
        path: Path,
        initial: Config | None = None,
        load: Callable[[Path], Config] = load_config,
    ):
        """Watch ``path``, starting from ``initial``, or from loading it now (ConfigError if bad).

        Pass ``initial`` only when it was loaded from the file as it is now: the
        file's present content is taken to be what ``initial`` came from.
        """
        self.path = path
        self._load = load
        # Fingerprint first, then load: an edit in between shows up as a change next time.
        self._seen = self._fingerprint()
        self._current = initial if initial is not None else load(path)
        self._reported: set[str] = set()

    @property
    def current(self) -> Config:
        """The last configuration that loaded; what should be running."""
        return self._current

    def check(self) -> WatchEvent | None:
        """None if the content is as it was at the last check; otherwise what it now means.

        After an invalid change this keeps returning None until the file
        changes again, so one mistake is one event.
        """
        fingerprint = self._fingerprint()
        if fingerprint == self._seen:
            return None
        self._seen = fingerprint
        try:
            if fingerprint == _MISSING:
                raise _removed(self.path)
            config = self._load(self.path)
        except ConfigError as error:
            text = str(error)
            first = text not in self._reported
            self._reported.add(text)
            return WatchEvent(config=None, error=error, first_report=first)
        self._current = config
        self._reported.clear()  # the same mistake made again later is news again
        return WatchEvent(config=config, error=None, first_report=True)

    def _fingerprint(self) -> str:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return _MISSING
        except OSError as exc:
            # Unreadable (permissions, a folder): a state of its own, so the load reports it.
            return f"unreadable: {exc.strerror}"
        return hashlib.sha256(data).hexdigest()


def _removed(path: Path) -> ConfigError:
    return ConfigError(
        [
            ConfigProblem(
                str(path),
                None,
                None,
                "the file was removed; the last good configuration keeps running",
                "put sources.yaml back (or restore it from a backup); "
                "the change is picked up as soon as it is saved",
            )
        ]
    )
