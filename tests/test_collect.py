"""Collecting many sources: concurrent, idempotent, one failure never stops the rest."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.state import SQLiteStateStore
from tests.conftest import DATA, FeedServer
from tracker.cli import main
from tracker.cli.collect import _print_process, _print_results, describe
from tracker.collect import collect
from tracker.config import parse_config
from tracker.config.kinds import kind_of, registered
from tracker.models import SourceResult, Status
from tracker.settings import Settings
from tracker.text import plural
from tracker.understand.process import ProcessReport

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def sources_yaml(server: FeedServer) -> str:
    server.add("/rss.xml", (DATA / "rss2.xml").read_bytes())
    server.add("/atom.xml", (DATA / "atom.xml").read_bytes())
    server.add(
        "/feed.json", (DATA / "feed.json").read_bytes(), content_type="application/feed+json"
    )
    server.add("/releases.atom", (DATA / "releases.atom").read_bytes())
    server.add("/broken", "oops", status=500)
    return f"""
sources:
  - {{name: rss, kind: feed, url: "{server.url("/rss.xml")}"}}
  - {{name: atom, kind: feed, url: "{server.url("/atom.xml")}"}}
  - {{name: json, kind: feed, url: "{server.url("/feed.json")}"}}
  - {{name: infer, kind: github_releases, repo: acme/infer, url: "{server.url("/releases.atom")}"}}
  - {{name: broken, kind: feed, url: "{server.url("/broken")}"}}
  - {{name: paused, kind: feed, url: "{server.url("/rss.xml")}", enabled: false}}
"""


@pytest.fixture
def store(settings: Settings):
    with SQLiteStateStore(settings.state_db) as s:
        yield s


def by_name(results):
    return {r.source: r for r in results}


def test_one_failing_source_does_not_stop_the_others(settings, server, store) -> None:
    config = parse_config(sources_yaml(server))
    results = by_name(collect(config, settings, store, now=lambda: NOW))
    assert set(results) == {"rss", "atom", "json", "infer", "broken"}  # disabled left out
    assert [results[n].new for n in ("rss", "atom", "json", "infer")] == [2, 1, 2, 2]
    assert results["broken"].status is Status.ERROR and "500" in str(results["broken"].error)
    assert store.count_items() == 7


def test_an_immediate_second_run_is_all_304s_and_stores_nothing_new(
    settings, server, store
) -> None:
    config = parse_config(sources_yaml(server))
    collect(config, settings, store, now=lambda: NOW)
    second = by_name(
        collect(config, settings, store, names=["rss", "atom", "json", "infer"], now=lambda: NOW)
    )
    assert {r.status for r in second.values()} == {Status.NOT_MODIFIED}
    assert sum(r.new + r.updated for r in second.values()) == 0
    assert store.count_items() == 7


def test_a_re_run_without_validators_neither_duplicates_nor_loses(settings, server, store) -> None:
    config = parse_config(sources_yaml(server))
    collect(config, settings, store, now=lambda: NOW)
    for route in server.routes.values():
        route.conditional = False
    again = by_name(collect(config, settings, store, names=["rss", "json"], now=lambda: NOW))
    assert (again["rss"].new, again["rss"].unchanged) == (0, 2)
    assert store.count_items() == 7


def test_a_failing_source_backs_off_and_is_skipped_until_due(settings, server, store) -> None:
    config = parse_config(sources_yaml(server))
    collect(config, settings, store, now=lambda: NOW)
    soon = by_name(collect(config, settings, store, now=lambda: NOW + timedelta(minutes=5)))
    assert soon["broken"].status is Status.ERROR and soon["broken"].backing_off
    assert "still failing after 1 failed attempt (last error: " in str(soon["broken"].error)
    assert "--force tries now" in str(soon["broken"].error)
    assert len(server.hits_for("/broken")) == 1
    later = by_name(collect(config, settings, store, now=lambda: NOW + timedelta(minutes=16)))
    assert later["broken"].status is Status.ERROR
    state = store.source_state("broken")
    assert state.consecutive_failures == 2
    assert state.next_attempt_after == NOW + timedelta(minutes=16 + 30)


def test_naming_a_source_or_force_tries_it_despite_backoff(settings, server, store) -> None:
    config = parse_config(sources_yaml(server))
    collect(config, settings, store, now=lambda: NOW)
    named = by_name(collect(config, settings, store, names=["broken"], now=lambda: NOW))
    forced = by_name(collect(config, settings, store, force=True, now=lambda: NOW))
    assert named["broken"].status is Status.ERROR and forced["broken"].status is Status.ERROR
    assert len(server.hits_for("/broken")) == 3


def test_due_only_skips_sources_within_their_interval(settings, server, store) -> None:
    server.add("/rss.xml", (DATA / "rss2.xml").read_bytes())
    config = parse_config(
        f'sources:\n  - {{name: rss, kind: feed, url: "{server.url("/rss.xml")}", interval: 1h}}\n'
    )
    collect(config, settings, store, now=lambda: NOW)
    assert (
        collect(config, settings, store, due_only=True, now=lambda: NOW + timedelta(minutes=30))
        == []
    )
    assert (
        len(collect(config, settings, store, due_only=True, now=lambda: NOW + timedelta(hours=2)))
        == 1
    )


def test_an_unexpected_crash_in_one_collector_is_reported_and_contained(
    settings, server, store
) -> None:
    class Exploding:
        def collect(self, source, ctx):
            raise TypeError("bad day")

    config = parse_config(sources_yaml(server))
    with registered(replace(kind_of("github_releases"), collector=Exploding())):
        results = by_name(collect(config, settings, store, now=lambda: NOW))
    assert "TypeError: bad day" in str(results["infer"].error)
    assert results["rss"].status is Status.OK


def test_same_host_requests_respect_the_per_host_limit(settings, server, store) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    # Requests meet in pairs: the limit (2) must allow two at once and never a third.
    pairs = threading.Barrier(settings.per_host, timeout=10)
    yaml_lines = ["sources:"]
    for i in range(6):
        server.add(f"/f{i}.xml", (DATA / "rss2.xml").read_bytes())
        yaml_lines.append(f'  - {{name: f{i}, kind: feed, url: "{server.url(f"/f{i}.xml")}"}}')
    original = server._handle

    def counting(request):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        with contextlib.suppress(threading.BrokenBarrierError):
            pairs.wait()
        try:
            original(request)
        finally:
            with lock:
                active -= 1

    server._handle = counting
    results = collect(parse_config("\n".join(yaml_lines)), settings, store, now=lambda: NOW)
    assert {r.status for r in results} == {Status.OK}
    assert peak == settings.per_host == 2


KILL_SCRIPT = """
import sys
from tracker.cli import main
sys.exit(main(["collect", "--no-process"]))
"""


def kill_once_committed(
    server: FeedServer, tracker_home: Path, hold: threading.Event, source: str, items: int
) -> None:
    """Run ``tracker collect`` in another process and kill -9 it once ``source`` has
    committed ``items`` items while another source's request hangs on ``hold``."""
    env = {**os.environ, "TRACKER_HOME": str(tracker_home), "TRACKER_TIMEOUT": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = tracker_home / "state.sqlite3"
    deadline = time.monotonic() + 30
    committed = 0
    while time.monotonic() < deadline and committed < items:
        if db.exists():
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(db) as conn:
                committed = conn.execute(
                    "SELECT count(*) FROM items WHERE source = ?", (source,)
                ).fetchone()[0]
        hold.wait(0.05)
    assert committed == items, f"{source} should be committed while the slow source hangs"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    hold.set()


def test_killing_a_run_midway_loses_nothing_committed_and_a_rerun_completes(
    server: FeedServer, write_sources, tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = threading.Event()
    server.add("/fast.xml", (DATA / "rss2.xml").read_bytes())
    server.add("/slow.xml", (DATA / "atom.xml").read_bytes(), hold=hold)
    path = write_sources(
        f'sources:\n  - {{name: fast, kind: feed, url: "{server.url("/fast.xml")}"}}\n'
        f'  - {{name: slow, kind: feed, url: "{server.url("/slow.xml")}"}}\n'
    )
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    kill_once_committed(server, tracker_home, hold, "fast", 2)

    assert main(["collect", "--no-process"]) == 0
    with SQLiteStateStore(tracker_home / "state.sqlite3") as store:
        assert sorted(i.title for i in store.items("fast")) == [
            "Quantization & you",
            "Speculative decoding in production",
        ]
        assert len(store.items("slow")) == 1
        assert store.count_items() == 3


def test_a_run_killed_after_a_sources_pages_neither_loses_them_nor_asks_for_them_again(
    server: FeedServer, write_sources, tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = threading.Event()
    server.add("/p/ok", (DATA / "article.html").read_bytes(), content_type="text/html")
    server.add("/p/forbidden", "no", status=403, content_type="text/html")
    server.add("/p/broken", "oops", status=500, content_type="text/html")
    items = "".join(
        f"<item><title>T {name}</title><link>{server.url('/p/' + name)}</link><guid>{name}</guid>"
        f"<description>Teaser {name}. Read more…</description></item>"
        for name in ("ok", "forbidden", "broken")
    )
    server.add(
        "/teasers.xml", f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    server.add("/slow.xml", (DATA / "atom.xml").read_bytes(), hold=hold)
    path = write_sources(
        f'sources:\n  - {{name: teasers, kind: feed, url: "{server.url("/teasers.xml")}"}}\n'
        f'  - {{name: slow, kind: feed, url: "{server.url("/slow.xml")}"}}\n'
    )
    monkeypatch.setenv("TRACKER_SOURCES", str(path))
    kill_once_committed(server, tracker_home, hold, "teasers", 3)

    assert main(["collect", "--no-process"]) == 0
    # the fetched page, the given-up page and the backing-off page: each asked once in all
    assert [len(server.hits_for(f"/p/{n}")) for n in ("ok", "forbidden", "broken")] == [1, 1, 1]
    assert server.hits_for("/teasers.xml")[-1].status == 304
    with SQLiteStateStore(tracker_home / "state.sqlite3") as store:
        full = {i.title: i.extra["full_text"] for i in store.items("teasers")}
        assert full == {"T ok": True, "T forbidden": False, "T broken": False}
        ids = {i.title: i.id for i in store.items("teasers")}
        assert store.page_tasks("teasers")[ids["T broken"]].attempts == 1
        assert store.count_items() == 4


def test_collect_json_reports_every_source_and_exits_1_when_one_failed(
    server, write_sources, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(sources_yaml(server))))
    assert main(["collect", "--json", "--no-process"]) == 1
    report = json.loads(capsys.readouterr().out)
    rows = {r["source"]: r for r in report}
    assert rows["rss"] == rows["rss"] | {"status": "ok", "new": 2, "updated": 0, "error": None}
    assert rows["broken"]["status"] == "error" and "500" in rows["broken"]["error"]
    assert main(["collect", "--json", "--no-process", "--source", "rss"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "not_modified"


def test_collect_prints_one_plain_line_per_source(
    server, write_sources, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(sources_yaml(server))))
    main(["collect", "--no-process"])
    out = capsys.readouterr().out
    assert "rss" in out and "2 new, 0 updated, 0 unchanged" in out
    assert "error:" in out and "answered 500 Internal Server Error" in out
    assert "5 sources: 7 new items, 0 updated, 1 failed." in out


def test_unknown_source_name_is_a_configuration_error(
    server, write_sources, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(sources_yaml(server))))
    assert main(["collect", "--source", "nope"]) == 2
    assert "no source named 'nope'" in capsys.readouterr().err


def test_a_broken_sources_yaml_exits_2_naming_the_line(write_sources, monkeypatch, capsys) -> None:
    monkeypatch.setenv(
        "TRACKER_SOURCES", str(write_sources("sources:\n  - name: a\n    kind: feed\n    url: [\n"))
    )
    assert main(["collect", "--no-process"]) == 2
    err = capsys.readouterr().err
    assert "sources.yaml:4: YAML syntax error" in err and "Traceback" not in err


def test_stats_json_reports_items_and_health(server, write_sources, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(sources_yaml(server))))
    main(["collect", "--no-process"])
    capsys.readouterr()
    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["items"] == 7
    rows = {s["name"]: s for s in stats["sources"]}
    assert (
        rows["rss"]["items"] == 2 and rows["rss"]["kind"] == "feed" and rows["rss"]["last_success"]
    )
    assert rows["broken"]["last_error"] and rows["broken"]["last_success"] is None


def test_without_network_every_source_fails_clearly_and_there_is_no_traceback(
    tmp_path, tracker_home
) -> None:
    sources = tmp_path / "offline.yaml"
    sources.write_text(
        "sources:\n"
        "  - {name: nowhere, kind: feed, url: 'http://no-such-host.invalid/feed'}\n"
        "  - {name: closed, kind: github_releases, repo: a/b, url: 'http://127.0.0.1:9/releases.atom'}\n"
    )
    env = {**os.environ, "TRACKER_SOURCES": str(sources), "TRACKER_HOME": str(tracker_home)}
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "collect"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "could not look up no-such-host.invalid" in done.stdout
    assert "127.0.0.1 refused the connection" in done.stdout


def test_editing_a_sources_url_does_not_send_the_old_validators(settings, server, store) -> None:
    server.add("/a.xml", (DATA / "rss2.xml").read_bytes())
    server.add("/b.xml", (DATA / "atom.xml").read_bytes())
    config_a = parse_config(
        f'sources:\n  - {{name: blog, kind: feed, url: "{server.url("/a.xml")}"}}\n'
    )
    config_b = parse_config(
        f'sources:\n  - {{name: blog, kind: feed, url: "{server.url("/b.xml")}"}}\n'
    )
    collect(config_a, settings, store, now=lambda: NOW)
    (moved,) = collect(config_b, settings, store, now=lambda: NOW)
    assert moved.status is Status.OK and moved.new == 1
    assert "if-none-match" not in server.hits_for("/b.xml")[0].headers


def test_an_unusable_state_directory_is_explained(
    server, write_sources, monkeypatch, tmp_path, capsys
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TRACKER_HOME", str(blocker / "home"))
    monkeypatch.setenv("TRACKER_SOURCES", str(write_sources(sources_yaml(server))))
    assert main(["collect", "--no-process"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the state store" in err and "TRACKER_HOME" in err and "Traceback" not in err


def test_a_reader_that_stops_reading_ends_the_command_quietly(world, tracker_home) -> None:
    # `tracker stories --json | head -1`: no BrokenPipeError traceback, as Unix tools do.
    assert main(["collect"]) == 0
    reader = subprocess.Popen(
        [sys.executable, "-m", "tracker", "stories", "--json"],
        env={**os.environ, "TRACKER_HOME": str(tracker_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # the pipe's reader is gone before the command writes
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize(
    ("n", "noun", "said"),
    [(1, "update", "1 update"), (2, "update", "2 updates"), (1, "new story", "1 new story"),
     (3, "new story", "3 new stories"), (2, "summary", "2 summaries"), (0, "paper", "0 papers"),
     (2, "day", "2 days"), (2, "entry", "2 entries")],
)  # fmt: skip
def test_every_count_a_person_reads_agrees_with_its_noun(n: int, noun: str, said: str) -> None:
    assert plural(n, noun) == said


def test_the_process_line_says_one_of_each_in_the_singular() -> None:
    out = io.StringIO()
    _print_process(ProcessReport(items=1, new_stories=1, updates=1, chunks=1, summaries=1), out)
    line = out.getvalue()
    assert "Processed 1 item: 1 new story," in line and "1 update;" in line
    assert "of 1 chunk embedded" in line and "1 summary (0 by the LLM)" in line


def test_a_next_try_on_another_day_says_the_date() -> None:
    now = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
    failed = SourceResult("blog", "feed", Status.ERROR, error="timed out")

    later = replace(failed, retry_after=now + timedelta(minutes=15))
    tomorrow = replace(failed, retry_after=now + timedelta(hours=12))

    assert describe(later, now) == "error: timed out (next try after 23:15 UTC)"
    assert describe(tomorrow, now) == "error: timed out (next try after 2026-12-08 11:00 UTC)"


def test_a_note_said_twice_for_one_source_is_printed_once_with_a_count() -> None:
    out = io.StringIO()
    note = "the feed is not well-formed (line 4); kept the 3 entries that could be read"
    result = SourceResult("blog", "feed", Status.OK, new=1, warnings=(note, "other", note))
    _print_results([result], out)
    lines = out.getvalue().splitlines()
    assert [line.strip() for line in lines[1:3]] == [f"note: {note} (×2)", "note: other"]
    assert lines[-1] == "1 source: 1 new item, 0 updated, none failed."
