"""The source's retry policy: pure, decided by the collector before the store keeps it."""

from datetime import UTC, datetime, timedelta

import pytest

from tracker.collect.backoff import BackoffPolicy

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_errors_that_will_not_fix_themselves_back_off_longer() -> None:
    policy = BackoffPolicy()
    assert policy.delay(1, transient=False) == timedelta(hours=4)
    assert policy.delay(3, transient=False) == timedelta(hours=16)
    assert policy.delay(4, transient=False) == timedelta(hours=24)


@pytest.mark.parametrize(
    ("not_before", "expected"),
    [
        (None, NOW + timedelta(minutes=30)),
        (NOW + timedelta(hours=3), NOW + timedelta(hours=3)),  # the server said when
        (NOW + timedelta(minutes=5), NOW + timedelta(minutes=30)),  # but never sooner
    ],
)
def test_a_retry_after_moves_the_next_try_later_never_sooner(not_before, expected):
    assert BackoffPolicy().retry_at(2, NOW, not_before=not_before) == expected
