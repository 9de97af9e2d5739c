"""Delivering a digest through the outbox: accepted messages only, resumable, never twice."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from storage.outbox import DigestOutbox
from storage.state import SQLiteStateStore
from tracker.deliver.delivery import FileDestination, RetryPolicy, deliver
from tracker.errors import DeliveryError
from tracker.models import Digest, DigestEntry, DigestSection, ItemKind
from tracker.services import Outgoing

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class StandInChannel:
    """A destination that accepts messages, or fails the way it is told to."""

    name = "discord:1"

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        #: Index of the message -> errors to raise, one per attempt, before accepting it.
        self.failures: dict[int, list[DeliveryError]] = {}

    def render(self, digest: Digest) -> list[Outgoing]:
        return [Outgoing({"content": e.title}, (e.story_id,)) for e in digest.entries]

    async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
        position = len(self.accepted)
        queued = self.failures.get(position)
        if queued:
            raise queued.pop(0)
        self.accepted.append(payload)
        return str(1000 + position)


def digest_of(n: int) -> Digest:
    entries = tuple(
        DigestEntry(f"s{i}", ItemKind.POST, f"Story {i}", None, ("blog",), (f"https://x/{i}",))
        for i in range(n)
    )
    return Digest(NOW, None, (DigestSection("Posts", entries),))


def stored(state: SQLiteStateStore, channel: StandInChannel, n: int = 3) -> int:
    messages = channel.render(digest_of(n))
    return DigestOutbox(state).create(
        NOW, channel.name, [(m.payload, m.story_ids) for m in messages]
    )


def runner(state: SQLiteStateStore) -> Callable[[Callable[[DigestOutbox], Any]], Any]:
    async def run(fn: Callable[[DigestOutbox], Any]) -> Any:
        return fn(DigestOutbox(state))

    return run


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def send_all(
    state: SQLiteStateStore, channel: StandInChannel, digest_id: int, sleep: Sleeps | None = None
):
    return asyncio.run(
        deliver(digest_id, channel, runner(state), lambda: NOW, RetryPolicy(), sleep or Sleeps())
    )


@pytest.fixture
def state(tmp_path: Path):
    with SQLiteStateStore(tmp_path / "state.sqlite3") as store:
        yield store


def test_a_digest_counts_as_sent_only_when_every_message_was_accepted(state):
    channel = StandInChannel()
    digest_id = stored(state, channel)

    assert DigestOutbox(state).sent() == ({}, None)  # stored, but nothing accepted yet
    report = send_all(state, channel, digest_id)

    assert report.complete and report.sent == 3
    assert [p["content"] for p in channel.accepted] == ["Story 0", "Story 1", "Story 2"]
    sent, last = DigestOutbox(state).sent()
    assert set(sent) == {"s0", "s1", "s2"} and last == NOW
    assert DigestOutbox(state).pending(channel.name) is None
    assert DigestOutbox(state).stories_of_message("1001") == ("s1",)


def test_a_partial_post_resumes_where_it_stopped_without_repeating_a_message(state):
    channel = StandInChannel()
    channel.failures[1] = [DeliveryError("Missing Permissions", retryable=False)]
    digest_id = stored(state, channel)

    first = send_all(state, channel, digest_id)
    assert (first.sent, first.left) == (1, 2)
    assert "Missing Permissions" in (first.error or "")
    sent, last = DigestOutbox(state).sent()
    assert set(sent) == {"s0"} and last is None  # the first story is out; the digest is not
    assert DigestOutbox(state).pending(channel.name) == digest_id

    second = send_all(state, channel, digest_id)
    assert second.complete and second.sent == 2
    assert [p["content"] for p in channel.accepted] == ["Story 0", "Story 1", "Story 2"]


def test_a_restarted_process_finds_the_unfinished_digest_and_finishes_it(tmp_path: Path):
    channel = StandInChannel()
    channel.failures[2] = [DeliveryError("503 Service Unavailable", retryable=True)] * 10
    with SQLiteStateStore(tmp_path / "state.sqlite3") as before:
        digest_id = stored(before, channel)
        report = send_all(before, channel, digest_id)
        assert report.left == 1
    channel.failures.clear()

    with SQLiteStateStore(tmp_path / "state.sqlite3") as after:  # a new process
        pending = DigestOutbox(after).pending(channel.name)
        assert pending == digest_id
        assert send_all(after, channel, pending).complete
    assert [p["content"] for p in channel.accepted] == ["Story 0", "Story 1", "Story 2"]


def test_outages_are_retried_with_growing_delays_and_the_servers_retry_after(state):
    channel = StandInChannel()
    channel.failures[0] = [
        DeliveryError("502 Bad Gateway", retryable=True),
        DeliveryError("502 Bad Gateway", retryable=True),
        DeliveryError("429 Too Many Requests", retryable=True, retry_after=7.5),
    ]
    sleeps = Sleeps()
    report = send_all(state, channel, stored(state, channel, n=1), sleeps)

    assert report.complete
    assert sleeps.seconds == [2.0, 4.0, 7.5]
    assert len(channel.accepted) == 1


def test_retries_give_up_after_the_policys_attempts_and_leave_the_rest(state):
    channel = StandInChannel()
    channel.failures[0] = [DeliveryError("timed out", retryable=True)] * 20
    sleeps = Sleeps()
    report = send_all(state, channel, stored(state, channel, n=2), sleeps)

    assert (report.sent, report.left) == (0, 2)
    assert len(sleeps.seconds) == RetryPolicy().attempts - 1
    assert max(sleeps.seconds) <= RetryPolicy().cap


def test_a_digest_with_no_messages_is_complete_at_once(state):
    digest_id = DigestOutbox(state).create(NOW, "file", [])
    assert DigestOutbox(state).pending("file") is None
    assert DigestOutbox(state).sent()[1] == NOW
    assert digest_id > 0


def test_file_destination_writes_one_markdown_file_per_day_in_the_digests_zone(tmp_path: Path):
    out = io.StringIO()
    destination = FileDestination(tmp_path / "digests", ZoneInfo("Pacific/Auckland"), out)
    late = Digest(datetime(2026, 11, 24, 20, 0, tzinfo=UTC), None, digest_of(1).sections)
    (message,) = destination.render(late)

    first = asyncio.run(destination.send(message.payload))
    second = asyncio.run(destination.send(message.payload))

    # 20:00 UTC is already the 25th in Auckland.
    assert Path(first).name == "2026-11-25.md"
    assert Path(second).name == "2026-11-25-2.md"
    assert "Story 0" in Path(first).read_text(encoding="utf-8")
    assert "Story 0" in out.getvalue() and "saved to" in out.getvalue()
    assert message.story_ids == ("s0",)
    assert not [p for p in (tmp_path / "digests").iterdir() if p.name.startswith(".")]


def test_file_destination_reports_an_unwritable_folder_as_a_retryable_delivery_error(
    tmp_path: Path,
):
    blocker = tmp_path / "digests"
    blocker.write_text("a file where the folder should be")
    destination = FileDestination(blocker, ZoneInfo("UTC"), io.StringIO())
    (message,) = destination.render(digest_of(1))

    with pytest.raises(DeliveryError) as caught:
        asyncio.run(destination.send(message.payload))
    assert caught.value.retryable and "TRACKER_HOME" in str(caught.value)


def test_a_message_the_destination_refuses_is_set_aside_and_the_rest_go_out(state):
    channel = StandInChannel()
    channel.failures[1] = [
        DeliveryError("Discord rejected the message (400: Invalid Form Body)", False, refused=True)
    ]
    digest_id = stored(state, channel)

    report = send_all(state, channel, digest_id)

    assert report.complete and (report.sent, report.refused) == (2, 1)
    assert [p["content"] for p in channel.accepted] == ["Story 0", "Story 2"]
    sent, last = DigestOutbox(state).sent()
    assert set(sent) == {"s0", "s2"} and last == NOW  # the refused story is not counted as sent
    assert DigestOutbox(state).pending(channel.name) is None


def test_an_unexpected_exception_from_the_destination_is_retried_like_an_outage(state):
    class Flaky(StandInChannel):
        calls = 0

        async def send(self, payload: dict[str, Any], *, key: str = "") -> str:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionResetError("peer reset the connection")
            return await super().send(payload)

    channel = Flaky()
    sleeps = Sleeps()
    report = send_all(state, channel, stored(state, channel, n=1), sleeps)

    assert report.complete and sleeps.seconds == [2.0]


def test_stopping_ends_delivery_between_messages(state):
    channel = StandInChannel()
    digest_id = stored(state, channel)
    stop_after_first = lambda: len(channel.accepted) >= 1  # noqa: E731

    report = asyncio.run(
        deliver(digest_id, channel, runner(state), lambda: NOW, stopping=stop_after_first)
    )

    assert (report.sent, report.left) == (1, 2)
    assert DigestOutbox(state).remaining(digest_id)[0].idx == 1
