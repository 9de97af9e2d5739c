"""``/sources add`` and ``/sources remove``: safe edits of the hand-written ``sources.yaml``.

People edit that file by hand, with comments, section banners and their own
quoting, so an edit must not reformat it. ruamel.yaml (round-trip) reads the
file to find where each entry of ``sources:`` starts and how the list is
indented; the change is then spliced into the text, and every other byte stays
as it was (add, then remove, gives back the same file). Only layouts a splice
cannot handle (a flow-style ``sources: [...]``, removing the last source) are
written back by ruamel as a whole, which keeps comments but may move a few.

Every edit is checked with the parser the tracker itself uses before the file
is replaced, atomically, so a mistake can never leave an unreadable file; a
file changed by someone else during the edit is left alone.

Adding a feed starts with ``check_feed_url`` and ``probe_feed``: only public
http(s) addresses, fetched through ``HttpClient`` (timeouts, size cap) and read
by the feed collector's own parser, so what is added is known to work.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from tracker.config import parse_config
from tracker.errors import (
    ConfigError,
    FetchError,
    HTTPStatusError,
    ParseError,
    SourceError,
    UserError,
)
from tracker.http import HttpClient, is_public_host
from tracker.settings import Settings
from tracker.sources.feed import FEED_ACCEPT, discover_feed, parse_feed
from tracker.urls import canonical_url

T = TypeVar("T")

#: One edit of sources.yaml at a time in this process (the bot runs edits in threads).
_EDIT_LOCK = threading.Lock()

#: Titles too generic to name a source by; the host says more.
_GENERIC_TITLES = frozenset({"blog", "feed", "rss", "atom", "news", "home", "posts", "index"})

#: A comment line that draws a rule ("# --- Papers ----"): it heads a section of the list.
_BANNER = re.compile(r"[-=#*~_]{3,}")


# --- checking and probing a feed ------------------------------------------------------


@dataclass(frozen=True)
class FeedProbe:
    """What fetching a feed's address found: it works, and what it is."""

    #: The address the feed was finally served from (after redirects).
    url: str
    title: str
    #: Entries in the feed right now.
    items: int
    kind: str = "feed"


def check_feed_url(url: str, *, is_public: Callable[[str], bool] = is_public_host) -> str:
    """The URL, stripped, if tracker may follow it; a UserError saying why not otherwise.

    Only http(s), no credentials, and a host on the public internet: a feed
    added from a chat must not make this machine fetch from itself, its local
    network or a cloud metadata endpoint. ``is_public`` resolves the host (tests
    that serve on 127.0.0.1 pass one that allows it).
    """
    url = url.strip()
    problem = _url_problem(url)
    if problem:
        raise UserError(problem)
    host = urlsplit(url).hostname or ""
    if not is_public(host):
        raise UserError(
            f"{host} is a loopback, private or link-local address; tracker only follows "
            "feeds on the public internet. Give the feed's public address."
        )
    return url


def _url_problem(url: str) -> str | None:
    """What is wrong with ``url`` without looking its host up, if anything."""
    example = "such as https://example.com/feed.xml"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"{url!r} is not a usable address ({exc}); give a full address {example}"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"{parts.scheme}: addresses" if parts.scheme else "addresses without http(s)://"
        return f"tracker follows http and https feeds only, not {scheme}; give one {example}"
    if not parts.hostname:
        return f"{url!r} has no host name; give a full address {example}"
    if parts.username is not None or parts.password is not None:
        return (
            "the address carries a user name or password; tracker keeps no credentials "
            "in sources.yaml, so give the address of a feed that needs no login"
        )
    if any(c.isspace() or not c.isprintable() for c in url) or len(url) > 2000:
        return f"{url[:200]!r} is not a usable address; give a full address {example}"
    return None


def probe_feed(
    url: str,
    settings: Settings,
    http: HttpClient | None = None,
    *,
    is_public: Callable[[str], bool] = is_public_host,
) -> FeedProbe:
    """Fetch ``url`` and read it as the feed collector would; UserError if it is no feed.

    Without ``http``, a client of its own checks every hop, redirects included,
    with ``is_public``; a client passed in is asked for public addresses only
    (checked by ``tracker.http`` at every hop).
    """
    url = check_feed_url(url, is_public=is_public)
    own = http is None
    client = http or HttpClient(settings, transport=_PublicOnlyTransport(is_public))
    try:
        response = client.get(url, accept=FEED_ACCEPT, public_only=not own)
    except HTTPStatusError as exc:
        raise UserError(_status_message(url, exc.status)) from None
    except SourceError as exc:  # timeouts, refused, too large, a private redirect
        raise UserError(f"could not fetch {url}: {exc}") from None
    finally:
        if own:
            client.close()
    try:
        parsed = parse_feed(response.content, response.url, response.headers)
    except ParseError as exc:
        advertised = discover_feed(response.content, response.url)
        if advertised:
            raise UserError(
                f"{response.url} is a web page, not a feed. It advertises its feed at "
                f"{advertised}: add that address instead."
            ) from None
        raise UserError(str(exc)) from None
    return FeedProbe(url=response.url, title=parsed.title, items=len(parsed.entries))


class _PublicOnlyTransport(httpx.BaseTransport):
    """Refuses any hop, redirects included, to a host ``is_public`` does not allow."""

    def __init__(self, is_public: Callable[[str], bool]):
        self._is_public = is_public
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self._is_public(request.url.host):
            raise FetchError(
                f"it leads to {request.url}, a loopback, private or link-local address; "
                "tracker only follows feeds on the public internet"
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _status_message(url: str, status: int) -> str:
    try:
        reason = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        reason = str(status)
    if status in (401, 403):
        hint = "the feed needs a login or refuses tracker; only public feeds can be followed"
    elif status in (404, 410):
        hint = "there is no feed at that address; check it (the site's pages usually link it)"
    elif status == 429 or status >= 500:
        hint = "the site is having trouble or limiting requests; try again later"
    else:
        hint = "check the address"
    return f"{url} answered {reason}: {hint}"


# --- editing sources.yaml ---------------------------------------------------------------


def add_source(path: Path, url: str, name: str | None, title: str | None = None) -> tuple[str, str]:
    """Append a ``feed`` source to ``sources:``; return the name used and the new text.

    Without ``name``, one is made from ``title`` (the feed's) or the host, unique
    in the file. Refuses an address or a name already followed.
    """

    url = url.strip()
    problem = _url_problem(url)
    if problem:
        raise UserError(problem)

    def change(text: str) -> tuple[str, str]:
        layout = _Layout.read(text, str(path))
        followed = layout.followed(url)
        if followed:
            raise UserError(f"{url} is already followed, as the source {followed!r}")
        used = _new_name(layout, name, title, url)
        # Added by someone in Discord, not by whoever runs the machine: it may never be
        # fetched from (or redirected to) an address inside the machine's network.
        entry: dict[str, str | bool] = {
            "name": used,
            "kind": "feed",
            "url": url,
            "public_only": True,
        }
        return layout.added(entry), used

    text, used = _edit(path, change, missing_ok=True)
    return used, text


def remove_source(path: Path, name: str) -> str:
    """Remove the source called ``name``; return a description of what was removed.

    Comment lines right above the entry go with it, unless they are a section
    banner (a rule such as ``# --- Papers ---``), which stays for the section.
    """

    def change(text: str) -> tuple[str, str]:
        layout = _Layout.read(text, str(path))
        index = layout.index_of(name)
        return layout.removed(index), layout.describe(index)

    _, described = _edit(path, change, missing_ok=False)
    return described


def _new_name(layout: _Layout, name: str | None, title: str | None, url: str) -> str:
    taken = {n.casefold() for n in layout.names()}
    if name is not None and name.strip():
        chosen = name.strip()
        if len(chosen) > 80 or not chosen.isprintable():
            raise UserError("a source name is one line of at most 80 characters")
        if chosen.casefold() in taken:
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
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _url_key(url: str) -> str:
    """One spelling per feed address: http and https, a trailing slash and case of the host
    do not make another feed."""
    canonical = canonical_url(str(url))
    return re.sub(r"^https?://", "", canonical).rstrip("/")


# --- the file's layout and splicing -------------------------------------------------------


def _rt_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long query or URL onto two lines
    return yaml


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


@dataclass(frozen=True)
class _Entry:
    node: Any
    #: The line of its dash, and the line after its last line (0-based, half-open).
    start: int
    end: int


@dataclass
class _Layout:
    """``sources.yaml`` as text lines and as ruamel's tree, with where each entry lies."""

    text: str
    lines: list[str]
    data: CommentedMap | None
    seq: CommentedSeq | None
    entries: list[_Entry]
    dash_col: int
    key_col: int
    newline: str

    @classmethod
    def read(cls, text: str, file: str) -> _Layout:
        try:
            data = _rt_yaml().load(text)
        except YAMLError:
            _valid(text, file, None)  # raises the tracker's own message, with the line
            raise
        if data is not None and not isinstance(data, CommentedMap):
            _valid(text, file, None)
        lines = text.splitlines(keepends=True)
        newline = "\r\n" if "\r\n" in text else "\n"
        seq = data.get("sources") if data is not None else None
        if not isinstance(seq, CommentedSeq):
            return cls(text, lines, data, None, [], 2, 4, newline)
        starts = [_dash_line(lines, seq.lc.item(i)[0]) for i in range(len(seq))]
        dash_col = _indent(lines[starts[0]]) if starts else 2
        key_col = dash_col + 2
        if starts and starts[0] == seq.lc.item(0)[0]:
            key_col = seq.lc.item(0)[1]
        entries = []
        for i, start in enumerate(starts):
            limit = starts[i + 1] if i + 1 < len(starts) else len(lines)
            entries.append(_Entry(seq[i], start, _entry_end(lines, start, limit, dash_col)))
        return cls(text, lines, data, seq, entries, dash_col, key_col, newline)

    # --- reading ---

    def names(self) -> list[str]:
        return [
            str(e.node["name"]).strip()
            for e in self.entries
            if isinstance(e.node, CommentedMap) and e.node.get("name") is not None
        ]

    def followed(self, url: str) -> str | None:
        """The name of the source that already follows ``url``, if any."""
        key = _url_key(url)
        for e in self.entries:
            url_of = e.node.get("url") if isinstance(e.node, CommentedMap) else None
            if url_of is not None and _url_key(url_of) == key:
                return str(e.node.get("name", "(unnamed)"))
        return None

    def index_of(self, name: str) -> int:
        wanted = name.strip()
        named = [
            (i, str(e.node.get("name", "")).strip())
            for i, e in enumerate(self.entries)
            if isinstance(e.node, CommentedMap)
        ]
        for i, have in named:
            if have == wanted:
                return i
        for i, have in named:  # names are unique regardless of case (see tracker.config)
            if have.casefold() == wanted.casefold():
                return i
        close = difflib.get_close_matches(wanted, [n for _, n in named], n=3, cutoff=0.6)
        hint = (
            f"did you mean {' or '.join(repr(c) for c in close)}?"
            if close
            else "the list of sources shows every name"
        )
        raise UserError(f"no source is named {wanted!r}; {hint}")

    def describe(self, index: int) -> str:
        node = self.entries[index].node
        kind = str(node.get("kind", "?"))
        target = node.get("url") or node.get("repo") or node.get("query") or node.get("ids")
        if isinstance(target, list):
            target = ", ".join(str(t) for t in target)
        return (
            f"{node.get('name')} ({kind}: {target})" if target else f"{node.get('name')} ({kind})"
        )

    # --- editing ---

    def added(self, entry: dict[str, str | bool]) -> str:
        if self.seq is not None and self.entries and not self.seq.fa.flow_style():
            return self._append_entry(entry)  # the usual case: after the last entry
        if self.data is None or ("sources" not in self.data and not self.data.fa.flow_style()):
            return self._append_sources(entry)  # an empty file, or one without sources:
        if self.seq is None and self._bare_key_line() is not None:
            return self._insert_after_key(entry)  # "sources:" with nothing under it
        return self._rewritten(lambda seq: seq.append(CommentedMap(entry)))

    def removed(self, index: int) -> str:
        if self.seq is None or self.seq.fa.flow_style() or len(self.entries) == 1:
            return self._rewritten(lambda seq: seq.pop(index))
        lines = self.lines
        entry = self.entries[index]
        first = _owned_start(lines, entry.start, self.dash_col)
        before = first
        while before > 0 and not lines[before - 1].strip():
            before -= 1
        after = entry.end
        if before == first:  # nothing blank above: take the blank lines below instead
            while after < len(lines) and not lines[after].strip():
                after += 1
        return "".join(lines[:before] + lines[after:])

    def _append_entry(self, entry: dict[str, str | bool]) -> str:
        lines = list(self.lines)
        last = self.entries[-1]
        blank = len(self.entries) > 1 and any(
            not line.strip() for line in lines[self.entries[-2].end : last.start]
        )
        if not lines[last.end - 1].endswith(("\n", "\r")):
            lines[last.end - 1] += self.newline  # a file without a final newline gets one
        block = (self.newline if blank else "") + self._render(entry, self.dash_col, self.key_col)
        return "".join([*lines[: last.end], block, *lines[last.end :]])

    def _append_sources(self, entry: dict[str, str | bool]) -> str:
        text = self.text
        if text and not text.endswith(("\n", "\r")):
            text += self.newline
        if text.strip() and not text.endswith(self.newline * 2):
            text += self.newline
        return text + "sources:" + self.newline + self._render(entry, 2, 4)

    def _bare_key_line(self) -> int | None:
        """The line of ``sources:`` when nothing but a comment follows it there."""
        assert self.data is not None
        line = self.data.lc.key("sources")[0]
        return line if re.match(r"^sources\s*:\s*(#.*)?$", self.lines[line].strip()) else None

    def _insert_after_key(self, entry: dict[str, str | bool]) -> str:
        assert self.data is not None
        line = self._bare_key_line()
        assert line is not None
        lines = list(self.lines)
        if not lines[line].endswith(("\n", "\r")):
            lines[line] += self.newline
        dash = self.data.lc.key("sources")[1] + 2
        block = self._render(entry, dash, dash + 2)
        return "".join([*lines[: line + 1], block, *lines[line + 1 :]])

    def _render(self, entry: dict[str, str | bool], dash_col: int, key_col: int) -> str:
        """The entry as YAML lines at this indentation, in the style of its siblings."""
        node = CommentedMap(entry)
        last = self.entries[-1].node if self.entries else None
        if isinstance(last, CommentedMap) and last.fa.flow_style():
            node.fa.set_flow_style()  # "- {name: ..., kind: feed, url: ...}" like the others
        out = io.StringIO()
        _rt_yaml().dump(node, out)
        body = out.getvalue().splitlines()
        first = " " * dash_col + "-" + " " * max(1, key_col - dash_col - 1) + body[0]
        rest = [" " * key_col + line for line in body[1:]]
        return "".join(line + self.newline for line in [first, *rest])

    def _rewritten(self, change: Callable[[CommentedSeq], object]) -> str:
        """The whole file through ruamel, for layouts a splice cannot handle."""
        _, indent, offset = load_yaml_guess_indent(self.text)
        offset = 2 if offset is None else offset
        yaml = _rt_yaml()
        yaml.indent(mapping=indent or 2, sequence=offset + 2, offset=offset)
        data = yaml.load(self.text)  # again: with quotes preserved
        if data is None:
            data = CommentedMap()
        seq = data.get("sources")
        if not isinstance(seq, CommentedSeq):
            seq = data["sources"] = CommentedSeq()
        change(seq)
        out = io.StringIO()
        yaml.dump(data, out)
        return out.getvalue()


def _dash_line(lines: list[str], line: int) -> int:
    """The line of the ``-`` of the item whose content starts on ``line``."""
    while line > 0 and not lines[line].lstrip().startswith("-"):
        line -= 1
    return line


def _entry_end(lines: list[str], start: int, limit: int, dash_col: int) -> int:
    """The line after an entry's last line: its content is indented past the dash."""
    end = start + 1
    for i in range(start + 1, limit):
        if not lines[i].strip():
            continue
        if _indent(lines[i]) <= dash_col:
            break
        end = i + 1
    return end


def _owned_start(lines: list[str], start: int, dash_col: int) -> int:
    """The first of the comment lines right above an entry that belong to it."""
    first = start
    while (
        first > 0
        and _is_comment(lines[first - 1])
        and _indent(lines[first - 1]) == dash_col
        and not _BANNER.search(lines[first - 1])
    ):
        first -= 1
    return first


# --- validating and writing ---------------------------------------------------------------


def _valid(text: str, file: str, original: str | None) -> None:
    """Raise a UserError unless ``text`` is a sources.yaml the tracker accepts."""
    try:
        parse_config(text, file)
    except ConfigError as exc:
        if original is not None:
            try:
                parse_config(original, file)
            except ConfigError:
                pass
            else:
                raise UserError(
                    f"the change would make {file} invalid, so it was not saved:\n{exc}"
                ) from None
        raise UserError(f"{file} has problems to fix before it can be edited:\n{exc}") from None


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


def _edit(path: Path, change: Callable[[str], tuple[str, T]], missing_ok: bool) -> tuple[str, T]:
    """Read, change, validate and atomically replace ``path``: one edit at a time."""
    target = Path(os.path.realpath(path))  # a symlinked sources.yaml stays a symlink
    with _EDIT_LOCK:
        original = _read(target, missing_ok)
        text, result = change(original)
        _valid(text, str(path), original)
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
