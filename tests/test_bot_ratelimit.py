"""The sliding window behind /ask's per-person limit, walked with an injected clock."""

from __future__ import annotations

import pytest

from bot.ratelimit import SlidingWindow


def test_uses_within_the_limit_pass_and_the_next_one_learns_when_to_come_back():
    now = [100.0]
    window = SlidingWindow(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert window.acquire("ann") is None
        now[0] += 10
    assert window.acquire("ann") == 160.0  # the first use leaves the window at 100 + 60


def test_a_refused_use_is_not_counted():
    now = [0.0]
    window = SlidingWindow(1, 60, clock=lambda: now[0])
    assert window.acquire("ann") is None
    now[0] = 59
    assert window.acquire("ann") == 60
    now[0] = 60
    assert window.acquire("ann") is None


def test_each_person_has_their_own_window():
    window = SlidingWindow(1, 60, clock=lambda: 0.0)
    assert window.acquire(1) is None
    assert window.acquire(2) is None
    assert window.acquire(1) == 60


def test_idle_people_are_forgotten():
    now = [0.0]
    window = SlidingWindow(1, 60, clock=lambda: now[0])
    for user in range(2000):
        window.acquire(user)
    now[0] = 1000
    window.acquire("late")
    assert len(window._uses) < 10


def test_a_limit_must_allow_something():
    with pytest.raises(ValueError):
        SlidingWindow(0, 60)
