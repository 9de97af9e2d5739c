"""``tracker sources``: check, add, import and export the sources of ``sources.yaml``.

The edits themselves are ``tracker.follow.edit``'s (shared with the bot's
``/sources add``); this module parses the flags and prints what happened.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from tracker.cli.exits import EXIT_CONFIG, EXIT_OK
from tracker.config import load_config
from tracker.settings import Settings
from tracker.text import plural

if TYPE_CHECKING:
    from pathlib import Path

    from tracker.follow.edit import Imported


def add_sources_commands(sources_commands: Any) -> None:
    """``check``, ``add``, ``import`` and ``export`` under ``tracker sources``."""
    check = sources_commands.add_parser("check", help="validate sources.yaml (exit 0 valid, 2 not)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(run=cmd_sources_check)
    _add_sources_edits(sources_commands)


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
    from tracker.follow.addresses import add_kinds

    add = sources_commands.add_parser(
        "add",
        help="follow a feed, a blog's page (its feed is found), a GitHub repo, a subreddit, "
        "Hugging Face papers or Hacker News",
    )
    add.add_argument("url", metavar="URL")
    add.add_argument("--name", default=None, help="the source's name (default: from its title)")
    add.add_argument(
        "--kind",
        choices=add_kinds(),
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
    from tracker.errors import UserError
    from tracker.follow.addresses import AlreadyFollowed
    from tracker.follow.edit import follow

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
    from tracker.follow.edit import import_feeds
    from tracker.follow.opml import read_opml

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
    for note in done.notes:
        print(f"Note: {note}", file=out)


def cmd_sources_export(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from tracker.follow.opml import subscription_for, write_opml

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
    print(f"Wrote {plural(len(feeds), 'feed')} to {args.output}.")
    return EXIT_OK
