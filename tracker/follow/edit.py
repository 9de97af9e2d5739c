"""Safe edits of the hand-written ``sources.yaml``: ``/sources add`` and ``/sources remove``
in Discord, ``tracker sources add`` and ``tracker sources import`` on the command line.

People edit that file by hand, with comments, section banners and their own
quoting, so an edit must not reformat it: the change is spliced into the text
(``tracker.follow.yaml_splice``) and every other byte stays as it was (add, then remove,
gives back the same file). Every edit is checked with the parser the tracker
itself uses before the file is replaced, atomically, so a mistake can never
leave an unreadable file; a file changed by someone else during the edit is
left alone.

Adding starts with ``tracker.follow.addresses.wanted_from`` (a GitHub repository, a
subreddit, Hugging Face's papers or Hacker News become sources of their own
kind; any other address is a feed), and a feed is checked by
``tracker.follow.feed_probe`` so that what is added is known to work. ``follow`` does
all of it for the bot's ``/sources add`` and ``tracker sources add`` alike;
``import_feeds`` adds the feeds of an OPML file in one edit.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ruamel.yaml.comments import CommentedSeq

from tracker.collect.http import HttpClient, is_public_host
from tracker.collect.sources.feed import feed_wanted
from tracker.config.kinds import kind_of
from tracker.config.names import skeleton
from tracker.errors import (
    UserError,
)
from tracker.follow.addresses import (
    AlreadyFollowed,
    Wanted,
    added_note,
    wanted_from,
)
from tracker.follow.feed_probe import FeedProbe, probe_feed
from tracker.follow.opml import MAX_TAGS, Subscription, tags_of, too_many_tags
from tracker.follow.yaml_splice import Layout, check_valid
from tracker.settings import Settings
from tracker.urls import url_key, url_problem

T = TypeVar("T")

#: One edit of sources.yaml at a time in this process (the bot runs edits in threads).
_EDIT_LOCK = threading.Lock()

#: Titles too generic to name a source by; the host says more.
_GENERIC_TITLES = frozenset({"blog", "feed", "rss", "atom", "news", "home", "posts", "index"})


# --- adding and removing ------------------------------------------------------------------


@dataclass(frozen=True)
class Followed:
    """A source just added to sources.yaml, and what checking it found."""

    name: str
    kind: str
    target: str
    #: For a feed: what fetching it found.
    probe: FeedProbe | None = None

    @property
    def note(self) -> str:
        """One line for a person: the feed's title and size, and the page it was found on."""
        probe = self.probe
        if probe is None:
            return added_note(self.kind)
        count = f"{probe.items} entries" if probe.items != 1 else "1 entry"
        title = f"“{probe.title}”, " if probe.title else ""
        found = f"; the feed that {probe.page} links to" if probe.page else ""
        return f"{title}{count} now{found}"


def follow(
    path: Path,
    url: str,
    settings: Settings,
    *,
    name: str | None = None,
    kind: str = "auto",
    is_public: Callable[[str], bool] = is_public_host,
    public_only: bool = True,
    http: HttpClient | None = None,
) -> Followed:
    """Add what ``url`` asks for to ``path``: the one way the bot's ``/sources add`` and
    ``tracker sources add`` add a source.

    A feed (or the feed a web page advertises) is fetched first, so only one
    that works is added; other kinds are added as they are (their collectors
    fetch fixed public APIs). Something already followed raises AlreadyFollowed,
    before any fetch when the address itself is followed.
    """
    wanted = wanted_from(url, kind)
    _check_addable(path, wanted, name)
    rule = kind_of(wanted.kind).address
    if rule is None or not rule.probe:
        used, _ = add_entry(path, wanted, name)
        return Followed(used, wanted.kind, wanted.target)
    probe = probe_feed(wanted.target, settings, http, is_public=is_public)
    used, _ = add_source(path, probe.address, name, probe.name_hint, public_only=public_only)
    return Followed(used, wanted.kind, probe.address, probe)


def _check_addable(path: Path, wanted: Wanted, name: str | None) -> None:
    """Refuse early, before any fetch: a file with problems, a source followed, a name taken.
    (The edit checks all of it again, under the lock.)"""
    text = _read(Path(os.path.realpath(path)), missing_ok=True)
    if not text.strip():
        return
    check_valid(text, str(path), None)
    layout = Layout.read(text, str(path))
    followed = layout.following(wanted)
    if followed:
        raise AlreadyFollowed(wanted.target, followed)
    if name is not None:
        _new_name(layout.taken(), name, None, wanted.target)


def add_source(
    path: Path,
    url: str,
    name: str | None,
    title: str | None = None,
    *,
    public_only: bool = True,
) -> tuple[str, str]:
    """Append a ``feed`` source to ``sources:``; return the name used and the new text.

    Without ``name``, one is made from ``title`` (the feed's) or the host, unique
    in the file. Refuses an address or a name already followed. ``public_only``
    (the default: feeds added from Discord) marks it never to be fetched from
    inside this machine's network.
    """
    return add_entry(path, feed_wanted(url.strip()), name, title, public_only=public_only)


def add_entry(
    path: Path,
    wanted: Wanted,
    name: str | None,
    title: str | None = None,
    *,
    public_only: bool = False,
) -> tuple[str, str]:
    """Append the source ``wanted`` to ``sources:``; return the name used and the new text."""

    def change(text: str) -> tuple[str, str]:
        layout = Layout.read(text, str(path))
        followed = layout.following(wanted)
        if followed:
            raise AlreadyFollowed(wanted.target, followed)
        used = _new_name(layout.taken(), name, title or wanted.name_hint, wanted.target)
        entry: dict[str, Any] = {"name": used, "kind": wanted.kind, **dict(wanted.keys)}
        if public_only and "public_only" in kind_of(wanted.kind).settings.model_fields:
            # Added by someone in Discord, not by whoever runs the machine: it may never be
            # fetched from (or redirected to) an address inside the machine's network.
            entry["public_only"] = True
        return layout.added(entry), used

    text, used = _edit(path, change, missing_ok=True)
    return used, text


@dataclass(frozen=True)
class Imported:
    """What importing a list of feeds did, feed by feed (titles as the list wrote them)."""

    #: Names of the sources added, in the list's order.
    added: list[str]
    #: (title, name of the source that follows it already)
    followed: list[tuple[str, str]]
    #: (title, why it was left out)
    skipped: list[tuple[str, str]]
    #: What else a person should know (a source given fewer tags than its folders).
    notes: list[str] = field(default_factory=list)


def import_feeds(
    path: Path,
    feeds: Sequence[Subscription],
    *,
    public_only: bool = False,
    dry_run: bool = False,
) -> Imported:
    """Add every feed of an OPML list not followed yet, in one edit; the rest reported.

    Feeds are not fetched (a reader's list is hundreds of feeds, and a dead one
    shows in ``tracker collect`` like any other); their folders become tags.
    """

    def change(text: str) -> tuple[str, Imported]:
        layout = Layout.read(text, str(path))
        taken = layout.taken()
        following = layout.addresses()  # feeds are followed by address: one look each
        first: dict[str, Subscription] = {}
        entries: list[dict[str, Any]] = []
        done = Imported([], [], [])
        for feed in feeds:
            label = feed.title or feed.url
            problem = _import_problem(feed.url)
            if problem:
                done.skipped.append((label, problem))
                continue
            key = url_key(feed.url)
            if key in first:
                where = f" (line {first[key].line})" if first[key].line else ""
                done.skipped.append((label, f"listed twice in the file{where}: imported once"))
                continue
            first[key] = feed
            already = following.get(key)
            if already:
                done.followed.append((label, already))
                continue
            used = _new_name(taken, None, feed.title, feed.url)
            taken.add(skeleton(used))
            entry: dict[str, Any] = {"name": used, "kind": "feed", "url": feed.url}
            tags = tags_of(feed)
            if tags:
                entry["tags"] = _flow(tags)
            if too_many_tags(feed):
                done.notes.append(
                    f"{used}: in more folders and categories than {MAX_TAGS}; the first "
                    f"{MAX_TAGS} are its tags"
                )
            if public_only:
                entry["public_only"] = True
            entries.append(entry)
            done.added.append(used)
        return (layout.added_all(entries) if entries else text), done

    _, done = _edit(path, change, missing_ok=True, write=not dry_run)
    return done


def _import_problem(url: str) -> str | None:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        what = f"a {scheme}: address" if scheme else "not a full address"
        return f"{url[:200]} is {what}; tracker follows http(s) feeds only"
    return url_problem(url)


def _flow(items: list[str]) -> CommentedSeq:
    """A list written on one line, ``tags: [blog, ai]``, as sources.yaml writes them."""
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def remove_source(path: Path, name: str) -> str:
    """Remove the source called ``name``; return a description of what was removed.

    Comment lines right above the entry go with it, unless they are a section
    banner (a rule such as ``# --- Papers ---``), which stays for the section.
    """

    def change(text: str) -> tuple[str, str]:
        layout = Layout.read(text, str(path))
        index = layout.index_of(name)
        return layout.removed(index), layout.describe(index)

    _, described = _edit(path, change, missing_ok=False)
    return described


def _new_name(taken: set[str], name: str | None, title: str | None, url: str) -> str:
    """``name`` if free; without one, a free name made from ``title`` or ``url``'s host.
    ``taken`` holds the names in use, case-folded."""
    if name is not None and name.strip():
        chosen = name.strip()
        if len(chosen) > 80 or not chosen.isprintable():
            raise UserError("a source name is one line of at most 80 characters")
        if skeleton(chosen) in taken:
            other = _unique(_slug(chosen) or "feed", taken)
            raise UserError(
                f"there is already a source named {chosen!r}; choose another name, "
                f"such as {other!r}"
            )
        return chosen
    base = _slug(title or "")
    if not base or base in _GENERIC_TITLES:
        base = _host_slug(url) or base or "feed"
    return _unique(base, taken)


def _slug(text: str) -> str:
    """``Simon Willison’s Weblog`` -> ``simon-willisons-weblog`` (ASCII, at most 40 chars)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.replace("'", "")).strip("-")
    if len(slug) > 40:
        slug = slug[:40].rsplit("-", 1)[0] or slug[:40]
    return slug


def _host_slug(url: str) -> str:
    """``https://www.example.co/feed`` -> ``example``: the host without www. and its TLD."""
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    labels = host.split(".")
    return _slug(".".join(labels[:-1]) if len(labels) > 1 else host)


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while skeleton(candidate) in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# --- validating and writing ---------------------------------------------------------------


def _read(path: Path, missing_ok: bool) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if missing_ok:
            return ""
        raise UserError(f"{path} does not exist, so there is nothing to remove") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; save it as UTF-8 and try again") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None


def _edit(
    path: Path, change: Callable[[str], tuple[str, T]], missing_ok: bool, write: bool = True
) -> tuple[str, T]:
    """Read, change, validate and atomically replace ``path``: one edit at a time.

    An edit that changes nothing writes nothing; without ``write`` (a dry run),
    the change is made and checked but not saved.
    """
    target = Path(os.path.realpath(path))  # a symlinked sources.yaml stays a symlink
    with _EDIT_LOCK:
        original = _read(target, missing_ok)
        text, result = change(original)
        if text == original:
            return text, result
        check_valid(text, str(path), original)
        if write:
            _replace(target, text, original)
    return text, result


def _replace(path: Path, text: str, expected: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``: a reader sees the old file or the new one, never half of one."""
    if _read(path, missing_ok=True) != expected:
        raise UserError(
            f"{path.name} was changed by someone else during this edit, so nothing was "
            "saved; try again"
        )
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write beside {path} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException as exc:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {path} ({exc.strerror or exc})") from None
        raise
    with suppress(OSError):  # make the rename itself durable (not possible everywhere)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
