"""The ``tracker`` command. Thin: each command parses its flags and calls a service.

Exit codes, for cron jobs and scripts: 0 success, 1 some sources failed,
2 the setup is wrong (sources.yaml, an environment variable, an unusable state directory).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from storage.state import SourceStats, SQLiteStateStore
from tracker import __version__
from tracker.collect import collect
from tracker.config import Config, load_config
from tracker.errors import ConfigError, StorageError
from tracker.models import SourceResult, Status
from tracker.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracker",
        description="Follow AI-engineering papers, posts and releases.",
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sources = commands.add_parser("sources", help="inspect sources.yaml")
    sources_commands = sources.add_subparsers(
        dest="sources_command", required=True, metavar="ACTION"
    )
    check = sources_commands.add_parser("check", help="validate sources.yaml (exit 0 valid, 2 not)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(run=cmd_sources_check)

    run = commands.add_parser("collect", help="fetch new items from the sources")
    run.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME",
        help="collect only this source (repeatable); named sources are tried now",
    )
    run.add_argument("--force", action="store_true", help="also try sources that are backing off")
    run.add_argument(
        "--due",
        action="store_true",
        help="only sources whose interval has passed since their last success",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object per source")
    run.set_defaults(run=cmd_collect)

    stats = commands.add_parser("stats", help="items and health per source")
    stats.add_argument("--json", action="store_true", help="print the result as JSON")
    stats.set_defaults(run=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env()
        return int(args.run(args, settings))
    except ConfigError as exc:
        _print_config_error(exc, getattr(args, "json", False))
        return EXIT_CONFIG
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("interrupted; what was already collected is saved", file=sys.stderr)
        return 130


def _print_config_error(exc: ConfigError, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps({"valid": False, "problems": [_problem(p) for p in exc.problems]}, indent=2)
        )
        return
    count = len(exc.problems)
    print(f"{count} problem{'s' if count != 1 else ''} in the configuration:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _problem(problem: Any) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "key": problem.key,
        "message": problem.message,
        "fix": problem.fix,
    }


# --- sources check -------------------------------------------------------------


def cmd_sources_check(args: argparse.Namespace, settings: Settings) -> int:
    config = load_config(settings.sources_path)
    if args.json:
        print(
            json.dumps(
                {
                    "valid": True,
                    "file": str(settings.sources_path),
                    "sources": [_source_json(s) for s in config.sources],
                },
                indent=2,
            )
        )
    else:
        enabled = sum(1 for s in config.sources if s.enabled)
        by_kind: dict[str, int] = {}
        for s in config.sources:
            by_kind[s.kind] = by_kind.get(s.kind, 0) + 1
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
        print(
            f"{settings.sources_path} is valid: {len(config.sources)} sources "
            f"({enabled} enabled; {kinds or 'none'})."
        )
    return EXIT_OK


def _source_json(source: Any) -> dict[str, Any]:
    data = source.model_dump(mode="json")
    if source.interval is not None:
        data["interval"] = int(source.interval.total_seconds())
    return data


# --- collect -------------------------------------------------------------------


def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    config = load_config(settings.sources_path)
    with SQLiteStateStore(settings.state_db) as store:
        results = _collect_with_progress(args, config, settings, store)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False))
    else:
        _print_results(results, sys.stdout)
    failed = any(r.status is Status.ERROR for r in results)
    return EXIT_FAILED if failed else EXIT_OK


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


def describe(result: SourceResult) -> str:
    """One line a person can read: what happened to a source."""
    if result.backing_off:
        return f"error: {result.error}"
    if result.status is Status.ERROR:
        retry = f" (next try after {result.retry_after:%H:%M} UTC)" if result.retry_after else ""
        return f"error: {result.error}{retry}"
    if result.status is Status.NOT_MODIFIED:
        return "unchanged since last run (304 Not Modified)"
    parts = [f"{result.new} new", f"{result.updated} updated", f"{result.unchanged} unchanged"]
    return ", ".join(parts)


def _print_results(results: list[SourceResult], out: TextIO) -> None:
    if not results:
        print("No sources to collect (all disabled, or none defined in sources.yaml).", file=out)
        return
    width = max(len(r.source) for r in results)
    for r in results:
        print(f"{_MARK[r.status]} {r.source:<{width}}  {describe(r)}", file=out)
        for warning in r.warnings:
            print(f"     {'':<{width}}  note: {warning}", file=out)
    failed = sum(r.status is Status.ERROR for r in results)
    new = sum(r.new for r in results)
    updated = sum(r.updated for r in results)
    summary = (
        f"{len(results)} sources: {new} new {'item' if new == 1 else 'items'}, {updated} updated"
    )
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
        kinds = ", ".join(f"{n} {k}s" for k, n in sorted(s.items_by_kind.items())) or "no items"
        state = s.state
        health = f"last success {_when(state.last_success) if state else 'never'}"
        if state and state.last_error and state.consecutive_failures:
            health += f"; failing ({state.consecutive_failures}x): {state.last_error}"
        print(f"{s.name:<{width}}  {s.kind:<15}  {kinds:<18}  {health}")
    print(f"{total} items in all.")
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
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
