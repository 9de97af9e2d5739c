"""The ``tracker`` command. Thin: each command parses its flags and calls a service.

Exit codes, for cron jobs and scripts: 0 success, 1 some sources failed,
2 the setup is wrong (sources.yaml, an environment variable, an unusable state directory).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tracker import __version__
from tracker.cli.backup import add_backup_commands
from tracker.cli.collect import cmd_collect, cmd_process, cmd_stats
from tracker.cli.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from tracker.cli.sources import add_sources_commands
from tracker.config import load_config
from tracker.errors import ConfigError, ConfigProblem, StorageError, TrackerError
from tracker.settings import Settings, default_home

if TYPE_CHECKING:
    from tracker.understand.rank import Ranked


def _where_things_are() -> str:
    """Which sources.yaml is read and where state lives, as this environment says."""
    env = os.environ
    home = env.get("TRACKER_HOME") or f"{default_home(env)} (TRACKER_HOME to change)"
    sources = env.get("TRACKER_SOURCES") or "./sources.yaml (TRACKER_SOURCES to change)"
    return f"sources: {sources}\nstate:   {home}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracker",
        description="Follow AI-engineering papers, posts and releases.",
        epilog=_where_things_are(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sources = commands.add_parser("sources", help="check, add, import and export sources")
    sources_commands = sources.add_subparsers(
        dest="sources_command", required=True, metavar="ACTION"
    )
    add_sources_commands(sources_commands)

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
        help="only stories whose news is within AGE (e.g. 12h, 1d, 7d): published, or "
        "updated, then; not merely collected then",
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
    add_backup_commands(commands)
    return parser


#: What a shell reports for a command killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    before = list(logging.getLogger().handlers)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        from tracker.runtime.logs import only_our_chatter

        for handler in logging.getLogger().handlers:
            if handler not in before:  # ours, not a host program's (or a test runner's)
                handler.addFilter(only_our_chatter)
    try:
        from storage.backup import using_home

        settings = Settings.from_env()
        with using_home(settings.home, alone=args.command == "restore"):
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
    except BrokenPipeError:
        # `tracker stories --json | head -1`: the reader has what it wanted. Quiet, as Unix
        # tools are; stdout goes to /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a full disk or a read-only home where no store caught it
        from storage.errors import machine_trouble

        trouble = machine_trouble(exc, Settings.from_env().home)
        if trouble is None:
            raise
        print(f"error: {trouble}", file=sys.stderr)
        return EXIT_CONFIG


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


# --- stories ------------------------------------------------------------------


def cmd_stories(args: argparse.Namespace, settings: Settings) -> int:
    from tracker.app import open_tracker
    from tracker.times import parse_interval
    from tracker.understand.popularity import describe

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
    from tracker.deliver.render import to_json, to_markdown
    from tracker.deliver.routes import route_named
    from tracker.times import parse_interval, utcnow

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
            from tracker.deliver.discord import render_discord

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

    from tracker.runtime import logs
    from tracker.runtime.serve import serve

    logs.setup(args.verbose, settings.secrets())
    config = load_config(settings.sources_path)
    asyncio.run(serve(settings, config))
    return EXIT_OK


# --- ask --------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from tracker.answer.ask import Filters
    from tracker.app import open_tracker
    from tracker.times import parse_interval, utcnow

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
            print(f"[{c.n}] {c.label} <{c.url}>")
    if answer.fallback_reason:
        print(f"\n(excerpts instead of the LLM's answer: {answer.fallback_reason})")
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
        "members": [
            {"source": m.source, "item_id": m.item_id, "url": m.url, "joined": m.joined}
            for m in story.members
        ],
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
