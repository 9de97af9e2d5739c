"""Only one tracker serve per state folder; a dead holder never leaves the lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.errors import TrackerError
from tracker.runtime.lock import AlreadyRunning, InstanceLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the lock uses fcntl")

REPO_ROOT = Path(__file__).resolve().parents[1]

HOLDER = """
import sys
from pathlib import Path
from tracker.runtime.lock import InstanceLock

with InstanceLock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def lock_path(tracker_home: Path) -> Path:
    return tracker_home / "serve.lock"


@pytest.fixture
def holder(lock_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until its stdin closes."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def test_the_lock_writes_the_holders_pid_and_creates_its_folder(lock_path: Path):
    with InstanceLock(lock_path) as lock:
        assert lock.held
        assert lock_path.read_text() == f"{os.getpid()}\n"
    assert not lock.held


def test_a_second_lock_in_the_same_process_names_the_holder(lock_path: Path):
    with InstanceLock(lock_path), pytest.raises(AlreadyRunning) as caught:
        InstanceLock(lock_path).acquire()

    message = str(caught.value)
    assert f"pid {os.getpid()}" in message
    assert str(lock_path) in message
    assert "stop it first" in message.lower()
    assert "TRACKER_HOME" in message
    assert isinstance(caught.value, TrackerError)
    assert caught.value.pid == os.getpid()


def test_the_lock_can_be_taken_again_after_release(lock_path: Path):
    with InstanceLock(lock_path):
        pass

    with InstanceLock(lock_path) as again:
        assert again.held


def test_another_process_holding_the_lock_is_named(lock_path: Path, holder):
    with pytest.raises(AlreadyRunning) as caught:
        InstanceLock(lock_path).acquire()

    assert caught.value.pid == holder.pid
    assert f"pid {holder.pid}" in str(caught.value)


def test_the_lock_is_free_once_the_holder_exits(lock_path: Path, holder):
    holder.stdin.close()
    assert holder.wait() == 0

    with InstanceLock(lock_path) as lock:
        assert lock.held
        assert lock_path.read_text() == f"{os.getpid()}\n"


def test_a_killed_holder_leaves_no_stale_lock(lock_path: Path, holder):
    holder.send_signal(signal.SIGKILL)
    assert holder.wait() == -signal.SIGKILL

    with InstanceLock(lock_path) as lock:
        assert lock.held
        assert lock_path.read_text() == f"{os.getpid()}\n"


def test_acquiring_twice_through_one_lock_is_a_mistake(lock_path: Path):
    with InstanceLock(lock_path) as lock, pytest.raises(RuntimeError):
        lock.acquire()
