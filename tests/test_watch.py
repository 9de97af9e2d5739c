"""Edits to sources.yaml are picked up; a broken edit is reported once and the last good config runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tracker.config import Config
from tracker.errors import ConfigError
from tracker.runtime.watch import ConfigWatcher

GOOD = """\
sources:
  - {name: blog, kind: feed, url: "https://blog.example/feed.xml"}
"""

BETTER = """\
sources:
  - {name: blog, kind: feed, url: "https://blog.example/feed.xml"}
  - {name: vllm, kind: github_releases, repo: vllm-project/vllm}
"""

BROKEN = """\
sources:
  - {name: vllm, kind: github_releases, repo: https://github.com/vllm-project/vllm}
"""


def names(config: Config | None) -> list[str]:
    assert config is not None
    return [s.name for s in config.sources]


@pytest.fixture
def watcher(write_sources: Callable[[str], Path]) -> ConfigWatcher:
    return ConfigWatcher(write_sources(GOOD))


def test_starts_from_the_file_as_it_is(watcher: ConfigWatcher):
    assert names(watcher.current) == ["blog"]


def test_starting_from_a_broken_file_fails_loudly(write_sources: Callable[[str], Path]):
    with pytest.raises(ConfigError, match="vllm-project/vllm"):
        ConfigWatcher(write_sources(BROKEN))


def test_an_unchanged_file_is_no_event(watcher: ConfigWatcher):
    assert watcher.check() is None
    assert watcher.check() is None


def test_a_valid_edit_brings_the_new_config(watcher: ConfigWatcher, write_sources):
    write_sources(BETTER)

    event = watcher.check()

    assert event is not None
    assert event.error is None
    assert names(event.config) == ["blog", "vllm"]
    assert names(watcher.current) == ["blog", "vllm"]
    assert watcher.check() is None


def test_an_invalid_edit_is_reported_once_and_the_old_config_keeps_running(
    watcher: ConfigWatcher, write_sources
):
    write_sources(BROKEN)

    event = watcher.check()

    assert event is not None
    assert event.config is None
    assert event.first_report
    assert "sources.yaml:2" in str(event.error)
    assert "write  repo: vllm-project/vllm" in str(event.error)
    assert [watcher.check() for _ in range(3)] == [None, None, None]
    assert names(watcher.current) == ["blog"]


def test_the_same_mistake_saved_again_is_not_reported_again(watcher: ConfigWatcher, write_sources):
    write_sources(BROKEN)
    watcher.check()
    write_sources(BROKEN + "# still thinking\n")

    event = watcher.check()

    assert event is not None
    assert event.error is not None
    assert not event.first_report


def test_a_different_mistake_is_reported(watcher: ConfigWatcher, write_sources):
    write_sources(BROKEN)
    watcher.check()
    write_sources("sources:\n  - {name: x, kind: rss}\n")

    event = watcher.check()

    assert event is not None
    assert event.first_report


def test_fixing_the_file_brings_the_new_config(watcher: ConfigWatcher, write_sources):
    write_sources(BROKEN)
    watcher.check()
    write_sources(BETTER)

    event = watcher.check()

    assert event is not None
    assert names(event.config) == ["blog", "vllm"]
    assert names(watcher.current) == ["blog", "vllm"]


def test_a_mistake_made_again_after_a_fix_is_reported_again(watcher: ConfigWatcher, write_sources):
    write_sources(BROKEN)
    watcher.check()
    write_sources(GOOD)
    watcher.check()
    write_sources(BROKEN)

    event = watcher.check()

    assert event is not None
    assert event.first_report


def test_a_removed_file_is_an_error_and_the_last_good_config_keeps_running(
    watcher: ConfigWatcher,
):
    watcher.path.unlink()

    event = watcher.check()

    assert event is not None
    assert event.config is None
    assert "the file was removed; the last good configuration keeps running" in str(event.error)
    assert watcher.check() is None
    assert names(watcher.current) == ["blog"]


def test_a_restored_file_is_picked_up(watcher: ConfigWatcher, write_sources):
    watcher.path.unlink()
    watcher.check()
    write_sources(BETTER)

    event = watcher.check()

    assert event is not None
    assert names(event.config) == ["blog", "vllm"]


def test_saving_identical_content_is_no_event(watcher: ConfigWatcher, write_sources):
    stat = watcher.path.stat()
    write_sources(GOOD)
    os.utime(watcher.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))

    assert watcher.check() is None


def test_an_edit_that_keeps_the_modification_time_is_still_caught(
    watcher: ConfigWatcher, write_sources
):
    stat = watcher.path.stat()
    write_sources(GOOD.replace("blog", "blug"))  # same size, too
    os.utime(watcher.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    event = watcher.check()

    assert event is not None
    assert names(event.config) == ["blug"]


def test_an_initial_config_skips_the_first_load(write_sources):
    calls: list[Path] = []

    def load(path: Path) -> Config:
        calls.append(path)
        raise AssertionError("not expected")

    initial = Config()
    watcher = ConfigWatcher(write_sources(GOOD), load=load, initial=initial)

    assert watcher.current is initial
    assert watcher.check() is None
    assert calls == []


def test_an_alias_bomb_saved_over_the_file_is_refused_and_the_old_config_keeps_running(
    watcher: ConfigWatcher, write_sources
):
    from tests.test_config import billion_laughs

    write_sources(billion_laughs())

    event = watcher.check()

    assert event is not None and event.config is None
    assert "expands to more than" in str(event.error)
    assert names(watcher.current) == ["blog"]
