"""How `tracker serve` behaves under load: start-up catch-up, and answers while collecting.

Serves the recorded feeds of ../shared/fixtures from a local server process
(as bench/collect.py does), runs the real ``Runtime`` with no Discord token
(digests go to files) and the bot's real services, and prints:

* start-up: the time from ``start()`` until the first sources are collected,
  processed, and the digest written (the catch-up a fresh install does);
* /ask and /search latency through the bot's services, idle, and while a
  collect-and-process of more sources runs on the jobs worker at the same time
  (questions run on their own worker, so they should barely notice);
* peak memory.

    .venv/bin/python bench/serve.py [--sources 30] [--more 30] [--questions 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from collect import (  # noqa: E402  (bench/collect.py, a sibling script)
    DEFAULT_FIXTURES,
    LocalServer,
    peak_rss_mb,
    plan_sources,
    sources_yaml,
)

from tracker.config import load_config  # noqa: E402
from tracker.deliver.delivery import FileDestination  # noqa: E402
from tracker.runtime import Runtime  # noqa: E402
from tracker.runtime.local_services import LocalServices  # noqa: E402
from tracker.settings import Settings  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(calls: list[Any]) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    plan = plan_sources(args.fixtures, args.sources + args.more, 0)
    server = LocalServer("process", plan.routes, [], False, True)
    try:
        text = sources_yaml(plan, server.base, "never")
        head, *entries = text.split("\n  - ")
        first = "\n  - ".join([head, *entries[: args.sources]]) + "\n"
        due = datetime.now(UTC) - timedelta(minutes=1)
        digest = f'digest: {{time: "{due:%H:%M}", timezone: UTC}}\n'
        sources = tmp / "sources.yaml"
        sources.write_text(digest + first, encoding="utf-8")
        settings = Settings(home=tmp / "home", sources_path=sources, workers=8, per_host=8)
        config = load_config(sources)
        quiet = FileDestination(settings.digests_path, ZoneInfo("UTC"), io.StringIO())
        runtime = Runtime(settings, config, quiet, watch_seconds=3600)
        services = LocalServices(runtime)
        started = time.perf_counter()
        await runtime.start()
        await runtime.started.wait()
        startup = time.perf_counter() - started
        stories = await runtime.jobs.run(lambda t: t.stories.stories())
        titles = [s.title for s in stories[: args.questions]]

        def asks() -> list[Any]:
            return [lambda q=q: services.ask(q, None, None) for q in titles]

        def searches() -> list[Any]:
            return [lambda q=q: services.search(q) for q in titles]

        idle_ask = await timed(asks())
        idle_search = await timed(searches())

        # More sources appear; their collect-and-process runs on the jobs worker while the
        # same questions are asked again.
        sources.write_text(digest + text, encoding="utf-8")
        await runtime.reload()
        busy_started = time.perf_counter()
        busy = asyncio.ensure_future(runtime.collect_all())
        await asyncio.sleep(0.5)  # let the collect begin
        busy_ask = await timed(asks())
        overlapped = not busy.done()
        run_more = await busy
        busy_seconds = time.perf_counter() - busy_started
        await runtime.stop()
        return {
            "sources": args.sources,
            "more": args.more,
            "stories": len(stories),
            "startup_s": round(startup, 2),
            "questions": len(titles),
            "ask_idle_ms": {"p50": percentile(idle_ask, 0.5), "p95": percentile(idle_ask, 0.95)},
            "search_idle_ms": {
                "p50": percentile(idle_search, 0.5),
                "p95": percentile(idle_search, 0.95),
            },
            "ask_while_collecting_ms": {
                "p50": percentile(busy_ask, 0.5),
                "p95": percentile(busy_ask, 0.95),
            },
            "asks_overlapped_the_collect": overlapped,
            "collect_while_asking_s": round(busy_seconds, 2),
            "collected_while_asking": len(run_more.results),
            "new_stories_while_asking": run_more.new_stories,
            "peak_rss_mb": round(peak_rss_mb()),
        }
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=30, help="sources at start-up (30)")
    parser.add_argument("--more", type=int, default=30, help="sources added later (30)")
    parser.add_argument("--questions", type=int, default=20, help="questions asked (20)")
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, metavar="DIR")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    args.fixtures = args.fixtures.resolve()
    if not (args.fixtures / "feeds").is_dir():
        print(f"bench: fixtures not found under {args.fixtures}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tracker-bench-serve-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    r = result
    print(f"start-up with {r['sources']} sources: {r['startup_s']} s ({r['stories']} stories)")
    for key, label in (
        ("ask_idle_ms", "/ask, idle"),
        ("search_idle_ms", "/search, idle"),
        ("ask_while_collecting_ms", f"/ask while {r['more']} more sources are collected"),
    ):
        print(f"{label}: p50 {r[key]['p50']:.0f} ms, p95 {r[key]['p95']:.0f} ms")
    print(
        f"the collect under questions: {r['collect_while_asking_s']} s, "
        f"{r['new_stories_while_asking']} new stories; overlapped: "
        f"{r['asks_overlapped_the_collect']}"
    )
    print(f"peak RSS: {r['peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
