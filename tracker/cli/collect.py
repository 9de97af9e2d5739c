"""``tracker collect``, ``tracker process`` and ``tracker stats``: fetching the sources and
understanding what came, with progress, and what each source is up to (its last success,
its failures, its page queue).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from storage.state import SourceStats, SQLiteStateStore
from tracker.cli.exits import EXIT_FAILED, EXIT_OK
from tracker.collect import collect, moved_note
from tracker.config import Config, load_config
from tracker.models import SourceResult, Status
from tracker.settings import Settings
from tracker.text import plural
from tracker.times import utcnow

if TYPE_CHECKING:
    from tracker.understand.process import ProcessReport


# --- collect -------------------------------------------------------------------


def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    config = load_config(settings.sources_path)
    with SQLiteStateStore(settings.state_db) as store:
        results = _collect_with_progress(args, config, settings, store)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False))
    else:
        _print_results(results, sys.stdout)
    if not args.no_process:
        report = _process(settings, reembed=False, quiet=args.json)
        if not args.json:
            _print_process(report, sys.stdout)
    failed = any(r.status is Status.ERROR for r in results)
    return EXIT_FAILED if failed else EXIT_OK


# --- process ------------------------------------------------------------------


def cmd_process(args: argparse.Namespace, settings: Settings) -> int:
    report = _process(settings, reembed=args.reembed, quiet=args.json)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _print_process(report, sys.stdout)
    return EXIT_OK


def _process(settings: Settings, reembed: bool, quiet: bool) -> ProcessReport:
    from tracker.app import open_tracker

    with open_tracker(settings) as tracker:
        if quiet or not sys.stderr.isatty():
            return tracker.process(reembed=reembed)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("processing"),
            BarColumn(),
            MofNCompleteColumn(),
            transient=True,
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task("", total=None)

            def moved(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return tracker.process(reembed=reembed, on_progress=moved)


def _print_process(report: ProcessReport, out: TextIO) -> None:
    if report.items == 0 and report.summaries == 0:
        print("Nothing new to process.", file=out)
        return
    print(
        f"Processed {plural(report.items, 'item')}: {plural(report.new_stories, 'new story')}, "
        f"{report.joined_by_key} joined by link or id, {report.joined_as_similar} as near "
        f"duplicates, {plural(report.updates, 'update')}; {report.chunks_embedded} of "
        f"{plural(report.chunks, 'chunk')} embedded (the rest seen before); "
        f"{plural(report.summaries, 'summary')} ({report.summaries_llm} by the LLM).",
        file=out,
    )
    for reason in report.summary_fallbacks[:5]:
        print(f"  note: extractive summary used, LLM retried later: {reason}", file=out)


def _collect_with_progress(
    args: argparse.Namespace, config: Config, settings: Settings, store: SQLiteStateStore
) -> list[SourceResult]:
    if args.json or not sys.stderr.isatty():
        return collect(
            config, settings, store, names=args.source, force=args.force, due_only=args.due
        )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("collecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task("", total=None)

        def started(total: int) -> None:
            progress.update(task, total=total)

        def finished(result: SourceResult) -> None:
            progress.update(task, advance=1, description=result.source)

        return collect(
            config,
            settings,
            store,
            names=args.source,
            force=args.force,
            due_only=args.due,
            on_start=started,
            on_result=finished,
        )


_MARK = {
    Status.OK: "ok  ",
    Status.NOT_MODIFIED: "ok  ",
    Status.ERROR: "FAIL",
}


def describe(result: SourceResult, now: datetime | None = None) -> str:
    """One line a person can read: what happened to a source."""
    if result.backing_off:
        return f"error: {result.error}"
    if result.status is Status.ERROR:
        retry = ""
        if result.retry_after:
            # "after 11:14" alone reads as today's; the next try may be tomorrow's.
            today = (now or utcnow()).date() == result.retry_after.date()
            when = (
                f"{result.retry_after:%H:%M}" if today else f"{result.retry_after:%Y-%m-%d %H:%M}"
            )
            retry = f" (next try after {when} UTC)"
        return f"error: {result.error}{retry}"
    if result.status is Status.NOT_MODIFIED:
        line = "unchanged since last run (304 Not Modified)"
    else:
        parts = [f"{result.new} new", f"{result.updated} updated", f"{result.unchanged} unchanged"]
        line = ", ".join(parts)
    return line + _pages(result)


def _pages(result: SourceResult) -> str:
    """What the run did about article pages, when it had any to do:
    "; 20 article pages fetched, 260 pending"."""
    counts = [
        (result.pages_fetched, "fetched"),
        (result.pages_failed, "failed"),
        (result.pages_pending, "pending"),
    ]
    parts = [f"{n} {what}" for n, what in counts if n]
    if not parts:
        return ""
    first = parts[0].split(" ", 1)
    noun = "article page" if first[0] == "1" else "article pages"
    parts[0] = f"{first[0]} {noun} {first[1]}"
    return "; " + ", ".join(parts)


def _print_results(results: list[SourceResult], out: TextIO) -> None:
    if not results:
        print("No sources to collect (all disabled, or none defined in sources.yaml).", file=out)
        return
    width = max(len(r.source) for r in results)
    for r in results:
        print(f"{_MARK[r.status]} {r.source:<{width}}  {describe(r)}", file=out)
        for warning, times in Counter(r.warnings).items():  # in order, each once
            again = f" (×{times})" if times > 1 else ""
            print(f"     {'':<{width}}  note: {warning}{again}", file=out)
    failed = sum(r.status is Status.ERROR for r in results)
    new = sum(r.new for r in results)
    updated = sum(r.updated for r in results)
    summary = f"{plural(len(results), 'source')}: {plural(new, 'new item')}, {updated} updated"
    summary += f", {failed} failed" if failed else ", none failed"
    print(summary + ".", file=out)


# --- stats ---------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    with SQLiteStateStore(settings.state_db) as store:
        stats = store.stats()
        total = store.count_items()
    if args.json:
        print(
            json.dumps(
                {"items": total, "sources": [_stats_json(s) for s in stats]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    if not stats:
        print("Nothing collected yet: run  tracker collect")
        return EXIT_OK
    width = max(len(s.name) for s in stats)
    for s in stats:
        kinds = ", ".join(plural(n, k) for k, n in sorted(s.items_by_kind.items())) or "no items"
        state = s.state
        health = f"last success {_when(state.last_success) if state else 'never'}"
        if state and state.last_error and state.consecutive_failures:
            health += f"; failing ({state.consecutive_failures}x): {state.last_error}"
        if s.pages.pending:
            health += f"; {plural(s.pages.pending, 'article page')} pending"
        if s.pages.gave_up:
            keeps = "item keeps its" if s.pages.gave_up == 1 else "items keep their"
            why = ", ".join(
                reason if n == 1 else f"{reason} ×{n}" for reason, n in s.pages.gave_up_reasons
            )
            health += f"; {s.pages.gave_up} {keeps} teaser for good ({why})"
        if state and state.moved_to:
            health += f"; {moved_note(state.moved_to)}"
        print(f"{s.name:<{width}}  {s.kind:<15}  {kinds:<18}  {health}")
    print(f"{plural(total, 'item')} in all.")
    return EXIT_OK


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "never"


def _stats_json(s: SourceStats) -> dict[str, Any]:
    state = s.state
    return {
        "name": s.name,
        "kind": s.kind,
        "items": s.items,
        "items_by_kind": s.items_by_kind,
        "last_success": state.last_success.isoformat() if state and state.last_success else None,
        "last_error": state.last_error if state else None,
        "last_error_at": state.last_error_at.isoformat() if state and state.last_error_at else None,
        "consecutive_failures": state.consecutive_failures if state else 0,
        "next_attempt_after": (
            state.next_attempt_after.isoformat() if state and state.next_attempt_after else None
        ),
        "pages_pending": s.pages.pending,
        "pages_given_up": s.pages.gave_up,
        "pages_given_up_reasons": [
            {"reason": reason, "count": n} for reason, n in s.pages.gave_up_reasons
        ],
        "moved_to": state.moved_to if state else None,
    }
