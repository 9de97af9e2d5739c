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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from storage.state import SourceStats, SQLiteStateStore
from tracker import __version__
from tracker.collect import collect, moved_note
from tracker.config import Config, load_config
from tracker.errors import ConfigError, ConfigProblem, StorageError, TrackerError
from tracker.models import SourceResult, Status
from tracker.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path

    from tracker.process import ProcessReport
    from tracker.rank import Ranked
    from tracker.sources_edit import Imported

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracker",
        description="Follow AI-engineering papers, posts and releases.",
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sources = commands.add_parser("sources", help="check, add, import and export sources")
    sources_commands = sources.add_subparsers(
        dest="sources_command", required=True, metavar="ACTION"
    )
    check = sources_commands.add_parser("check", help="validate sources.yaml (exit 0 valid, 2 not)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(run=cmd_sources_check)
    _add_sources_edits(sources_commands)

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
    run.add_argument(
        "--no-process",
        action="store_true",
        help="only collect; do not embed, merge into stories and summarise",
    )
    run.set_defaults(run=cmd_collect)

    process = commands.add_parser("process", help="embed new items, merge stories, summarise")
    process.add_argument(
        "--reembed",
        action="store_true",
        help="rebuild the vector store with the configured embedder",
    )
    process.add_argument("--json", action="store_true", help="print the report as JSON")
    process.set_defaults(run=cmd_process)

    stories = commands.add_parser("stories", help="list stories, best first, with score parts")
    stories.add_argument(
        "--since",
        default=None,
        metavar="AGE",
        help="only stories new or updated within AGE (e.g. 12h, 1d, 7d)",
    )
    stories.add_argument("--limit", type=int, default=20, help="how many (default 20; 0 = all)")
    stories.add_argument("--json", action="store_true", help="print the stories as JSON")
    stories.set_defaults(run=cmd_stories)

    digest = commands.add_parser("digest", help="the digest of what is new since the last one")
    digest.add_argument(
        "--since",
        default=None,
        metavar="AGE",
        help="everything new or updated within AGE, sent before or not, instead of what is "
        "new since the last digest (as /digest since: does)",
    )
    digest.add_argument(
        "--route",
        default=None,
        metavar="NAME",
        help="the digest of one route of digest.routes (default: the first)",
    )
    digest.add_argument("--format", choices=("markdown", "json", "discord"), default="markdown")
    digest.add_argument(
        "--dry-run", action="store_true", help="show it without recording it as sent"
    )
    digest.set_defaults(run=cmd_digest)

    ask = commands.add_parser("ask", help="answer a question from the collected sources")
    ask.add_argument("question")
    ask.add_argument("--since", default=None, metavar="AGE", help="only sources within AGE")
    ask.add_argument("--kind", choices=("paper", "post", "release"), default=None)
    ask.add_argument("--source", default=None, metavar="NAME", help="only this source")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.set_defaults(run=cmd_ask)

    serve = commands.add_parser(
        "serve",
        help="run on a schedule: collect, post the daily digest (Discord bot if DISCORD_TOKEN)",
    )
    serve.set_defaults(run=cmd_serve)

    stats = commands.add_parser("stats", help="items and health per source")
    stats.add_argument("--json", action="store_true", help="print the result as JSON")
    stats.set_defaults(run=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    before = list(logging.getLogger().handlers)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        from tracker.logs import only_our_chatter

        for handler in logging.getLogger().handlers:
            if handler not in before:  # ours, not a host program's (or a test runner's)
                handler.addFilter(only_our_chatter)
    try:
        settings = Settings.from_env()
        return int(args.run(args, settings))
    except ConfigError as exc:
        _print_config_error(exc, getattr(args, "json", False))
        return EXIT_CONFIG
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TrackerError as exc:  # an embedding server down, a model that cannot load
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
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


# --- sources add, import, export -------------------------------------------------------


def _add_sources_edits(sources_commands: Any) -> None:
    from tracker.addresses import ADD_KINDS

    add = sources_commands.add_parser(
        "add",
        help="follow a feed, a blog's page (its feed is found), a GitHub repo, a subreddit, "
        "Hugging Face papers or Hacker News",
    )
    add.add_argument("url", metavar="URL")
    add.add_argument("--name", default=None, help="the source's name (default: from its title)")
    add.add_argument(
        "--kind",
        choices=ADD_KINDS,
        default="auto",
        help="what URL is (default auto: github.com/OWNER/REPO, reddit.com/r/NAME, "
        "huggingface.co/papers and news.ycombinator.com are recognised; anything else is a feed)",
    )
    add.add_argument(
        "--public-only",
        action="store_true",
        help="never fetch the feed from a private or local address (as /sources add does)",
    )
    add.set_defaults(run=cmd_sources_add)

    opml_in = sources_commands.add_parser(
        "import", help="follow every feed of an OPML file (a feed reader's export)"
    )
    opml_in.add_argument("file", metavar="FILE.opml")
    opml_in.add_argument(
        "--dry-run", action="store_true", help="report what would be added; change nothing"
    )
    opml_in.add_argument(
        "--public-only",
        action="store_true",
        help="mark every imported feed never to be fetched from a private or local address",
    )
    opml_in.set_defaults(run=cmd_sources_import)

    opml_out = sources_commands.add_parser(
        "export", help="write the followed feeds as OPML (folders from their tags)"
    )
    opml_out.add_argument(
        "--output", "-o", default=None, metavar="FILE", help="write to FILE instead of stdout"
    )
    opml_out.set_defaults(run=cmd_sources_export)


def _anywhere(host: str) -> bool:
    """The command line is the machine's owner: a feed on the local network is theirs to follow
    (unlike one added from a chat). ``--public-only`` marks it for collection all the same."""
    return True


def cmd_sources_add(args: argparse.Namespace, settings: Settings) -> int:
    from tracker.addresses import AlreadyFollowed
    from tracker.errors import UserError
    from tracker.sources_edit import follow

    path = settings.sources_path
    try:
        added = follow(
            path,
            args.url,
            settings,
            name=args.name,
            kind=args.kind,
            is_public=_anywhere,
            public_only=args.public_only,
        )
    except AlreadyFollowed as exc:
        print(f"{exc}; {path} is unchanged.")
        return EXIT_OK
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"{path} is unchanged.", file=sys.stderr)
        return EXIT_CONFIG
    note = f" ({added.note})" if added.note else ""
    print(f"Added {added.name} ({added.kind}: {added.target}) to {path}{note}.")
    return EXIT_OK


def cmd_sources_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from tracker.errors import UserError
    from tracker.opml import read_opml
    from tracker.sources_edit import import_feeds

    file = Path(args.file)
    try:
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{file} does not exist; give the path of an OPML file") from None
        except OSError as exc:
            raise UserError(f"cannot read {file} ({exc.strerror or exc})") from None
        opml = read_opml(data, str(file))
        if not opml.feeds:
            raise UserError(
                f"{file} lists no feeds (no <outline> has an xmlUrl); export your "
                "subscriptions from your feed reader as OPML and import that file"
            )
        done = import_feeds(
            settings.sources_path,
            opml.feeds,
            public_only=args.public_only,
            dry_run=args.dry_run,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    skipped = [(f"{n.title} (line {n.line})", n.reason) for n in opml.skipped]
    _print_import(done, skipped, file, settings, args.dry_run, sys.stdout)
    return EXIT_OK


def _print_import(
    done: Imported,
    unread: list[tuple[str, str]],
    file: Path,
    settings: Settings,
    dry_run: bool,
    out: TextIO,
) -> None:
    """N added, M already followed (names), K skipped (why): what an import did."""
    import textwrap

    skipped = [*unread, *done.skipped]
    verb = "would be added" if dry_run else "added"
    print(
        f"{file} into {settings.sources_path}: {len(done.added)} {verb}, "
        f"{len(done.followed)} already followed, {len(skipped)} skipped"
        + (" (dry run: nothing written)." if dry_run else "."),
        file=out,
    )
    if done.added:
        names = ", ".join(done.added)
        print(
            textwrap.fill(
                names, 100, initial_indent=f"{verb.capitalize()}: ", subsequent_indent="  "
            ),
            file=out,
        )
    if done.followed:
        print("Already followed:", file=out)
        for title, name in done.followed:
            print(f"  {title} (as {name})", file=out)
    if skipped:
        print("Skipped:", file=out)
        for title, why in skipped:
            print(f"  {title}: {why}", file=out)


def cmd_sources_export(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from tracker.opml import subscription_for, write_opml

    config = load_config(settings.sources_path)
    feeds = [s for s in config.sources if s.kind == "feed"]
    others = [s for s in config.sources if s.kind != "feed"]
    document = write_opml(subscription_for(s.name, str(s.url), s.tags) for s in feeds)
    if others:
        left = ", ".join(f"{s.name} ({s.kind})" for s in others)
        print(f"note: OPML lists feeds only; left out: {left}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(document.decode("utf-8"))
        return EXIT_OK
    try:
        Path(args.output).write_bytes(document)
    except OSError as exc:
        print(f"error: cannot write {args.output} ({exc.strerror or exc})", file=sys.stderr)
        return EXIT_CONFIG
    print(f"Wrote {_plural(len(feeds), 'feed')} to {args.output}.")
    return EXIT_OK


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
        f"Processed {report.items} items: {report.new_stories} new stories, "
        f"{report.joined_by_key} joined by link or id, {report.joined_as_similar} as near "
        f"duplicates, {report.updates} updates; {report.chunks_embedded} of {report.chunks} "
        f"chunks embedded (the rest seen before); {report.summaries} summaries "
        f"({report.summaries_llm} by the LLM).",
        file=out,
    )
    for reason in report.summary_fallbacks[:5]:
        print(f"  note: extractive summary used, LLM retried later: {reason}", file=out)


# --- stories ------------------------------------------------------------------


def cmd_stories(args: argparse.Namespace, settings: Settings) -> int:
    from tracker.app import open_tracker
    from tracker.config import parse_interval
    from tracker.popularity import describe

    config = load_config(settings.sources_path)
    since = _age(args.since, parse_interval) if args.since else None
    with open_tracker(settings) as tracker:
        ranked = tracker.ranked(config, since)
    if args.limit:
        ranked = ranked[: args.limit]
    if args.json:
        print(json.dumps([_ranked_json(r) for r in ranked], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not ranked:
        print("No stories yet: run  tracker collect" if not since else "No stories in that time.")
        return EXIT_OK
    for n, r in enumerate(ranked, 1):
        story = r.story
        flag = f" [updated: {story.update_note}]" if story.updated and story.update_note else ""
        print(f"{n:>2}. [{story.kind.value}] {story.title}{flag}")
        parts = ", ".join(f"{k} {v:+.2f}" for k, v in r.parts.items() if v)
        print(f"    score {r.score:.2f} ({parts})")
        if story.engagement:
            print(f"    {describe(story.engagement)}")
        if story.summary:
            print(f"    {story.summary}")
        print(f"    {', '.join(story.sources)}: {' '.join(story.links[:4])}")
    return EXIT_OK


# --- digest -------------------------------------------------------------------


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    from storage.outbox import DigestOutbox
    from tracker.app import open_tracker
    from tracker.config import parse_interval
    from tracker.render import to_json, to_markdown
    from tracker.routes import route_named
    from tracker.times import utcnow

    config = load_config(settings.sources_path)
    now = utcnow()
    since = _age(args.since, parse_interval) if args.since else None
    try:
        route = route_named(config, args.route)
    except KeyError as exc:
        raise ConfigError(
            [ConfigProblem("command line", None, "--route", str(exc.args[0]), None)]
        ) from None
    with open_tracker(settings) as tracker:
        digest = tracker.digest(config, now, since=since, route=route)
        if args.format == "json":
            text = json.dumps(to_json(digest), indent=2, ensure_ascii=False) + "\n"
        elif args.format == "discord":
            from tracker.discord_render import render_discord

            payloads = [m.to_payload() for m in render_discord(digest)]
            text = json.dumps(payloads, indent=2, ensure_ascii=False) + "\n"
        else:
            text = to_markdown(digest)
        print(text, end="")
        if not args.dry_run:
            # Printed is delivered: recorded by the one writer of digest records, the outbox.
            outbox = DigestOutbox(tracker.state)
            ids = [e.story_id for e in digest.entries]
            digest_id = outbox.create(
                now, f"terminal:{args.format}", [({"text": text}, ids)], route=route.name
            )
            for message in outbox.remaining(digest_id):
                outbox.mark_sent(message, "printed", now)
    return EXIT_OK


# --- serve ------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from tracker import logs
    from tracker.serve import serve

    logs.setup(args.verbose, settings.secrets())
    config = load_config(settings.sources_path)
    asyncio.run(serve(settings, config))
    return EXIT_OK


# --- ask --------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from tracker.app import open_tracker
    from tracker.ask import Filters
    from tracker.config import parse_interval
    from tracker.times import utcnow

    since = utcnow() - _age(args.since, parse_interval) if args.since else None
    filters = Filters(since=since, kind=args.kind, source=args.source)
    with open_tracker(settings) as tracker:
        answer, _ = tracker.ask(args.question, filters)
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return EXIT_OK
    print(answer.text)
    if answer.citations:
        print()
        for c in answer.citations:
            print(f"[{c.n}] {c.title} <{c.url}>")
    return EXIT_OK


def _age(text: str, parse: Any) -> timedelta:
    from pydantic_core import PydanticCustomError

    try:
        age: timedelta = parse(text)
        return age
    except PydanticCustomError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    "command line", None, "--since", exc.message(), "use e.g. 12h, 1d or 7d"
                )
            ]
        ) from None


def _ranked_json(r: Ranked) -> dict[str, Any]:
    story = r.story
    return {
        "id": story.id,
        "kind": story.kind.value,
        "title": story.title,
        "summary": story.summary,
        "summary_method": story.summary_method,
        "score": r.score,
        "score_parts": r.parts,
        "links": story.links,
        "sources": story.sources,
        "first_seen": story.first_seen.isoformat(),
        "last_changed": story.last_changed.isoformat(),
        "published": story.published.isoformat() if story.published else None,
        "updated": story.updated,
        "update_note": story.update_note,
        "engagement": {
            c: {"votes": e.votes, "comments": e.comments} for c, e in story.engagement.items()
        },
    }


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


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
        if s.pages.pending:
            health += f"; {_plural(s.pages.pending, 'article page')} pending"
        if s.pages.gave_up:
            keeps = "item keeps its" if s.pages.gave_up == 1 else "items keep their"
            why = ", ".join(
                reason if n == 1 else f"{reason} ×{n}" for reason, n in s.pages.gave_up_reasons
            )
            health += f"; {s.pages.gave_up} {keeps} teaser for good ({why})"
        if state and state.moved_to:
            health += f"; {moved_note(state.moved_to)}"
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
        "pages_pending": s.pages.pending,
        "pages_given_up": s.pages.gave_up,
        "pages_given_up_reasons": [
            {"reason": reason, "count": n} for reason, n in s.pages.gave_up_reasons
        ],
        "moved_to": state.moved_to if state else None,
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
