"""Source health is announced once when a source starts failing, and once when it recovers."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.state import SourceState
from tracker.deliver.health import FAILING_AFTER, health_changes, notice_key

LATER = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def state(failures: int, error: str | None = None) -> SourceState:
    return SourceState(
        "blog",
        "feed",
        consecutive_failures=failures,
        last_error=error,
        next_attempt_after=LATER if failures else None,
    )


def test_one_failure_is_a_blip_and_says_nothing():
    assert health_changes({"blog": state(1, "timed out")}, ["blog"], set()) == []


def test_repeated_failures_are_announced_with_the_error_and_the_retry_time():
    (change,) = health_changes({"blog": state(FAILING_AFTER, "HTTP 503")}, ["blog"], set())
    assert change.failing
    assert "HTTP 503" in change.plain and "2026-11-24 09:00 UTC" in change.plain
    assert "**blog**" in change.markdown


def test_an_announced_failure_is_not_announced_again():
    said = {notice_key("blog")}
    assert health_changes({"blog": state(FAILING_AFTER + 3, "HTTP 503")}, ["blog"], said) == []


def test_recovery_is_announced_once_after_a_failure_was():
    (change,) = health_changes({"blog": state(0)}, ["blog"], {notice_key("blog")})
    assert not change.failing and "working again" in change.plain
    assert health_changes({"blog": state(0)}, ["blog"], set()) == []


def test_web_text_in_an_announcement_cannot_ping_or_format():
    (change,) = health_changes({"blog": state(3, "@everyone **look** <@123>")}, ["blog"], set())
    assert "@everyone" not in change.markdown.replace("@\u200beveryone", "")
    assert "<@123>" not in change.markdown
