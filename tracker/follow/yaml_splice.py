"""Where each entry of a hand-written ``sources:`` list starts and ends, and how it is
indented, so that an entry can be spliced in or cut out with every other byte kept.

ruamel.yaml (round-trip) reads the file to find the entries; the change is then
made in the text itself. Only layouts a splice cannot handle (a flow-style
``sources: [...]``, removing the last source) are left to ruamel as a whole.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from tracker.config import parse_config
from tracker.config.names import skeleton
from tracker.errors import ConfigError, UserError
from tracker.follow.addresses import Wanted, follows
from tracker.urls import url_key

#: A comment line that draws a rule ("# --- Papers ----"): it heads a section of the list.
_BANNER = re.compile(r"[-=#*~_]{3,}")


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
class Layout:
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
    def read(cls, text: str, file: str) -> Layout:
        try:
            data = _rt_yaml().load(text)
        except YAMLError:
            check_valid(text, file, None)  # raises the tracker's own message, with the line
            raise
        if data is not None and not isinstance(data, CommentedMap):
            check_valid(text, file, None)
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

    def taken(self) -> set[str]:
        """The names in use, case-folded: names are unique regardless of case."""
        return {skeleton(n) for n in self.names()}

    def following(self, wanted: Wanted) -> str | None:
        """The name of the source that already follows what ``wanted`` asks for, if any."""
        for e in self.entries:
            if follows(e.node, wanted):
                return str(e.node.get("name", "(unnamed)"))
        return None

    def addresses(self) -> dict[str, str]:
        """The name of the source following each address (``url_key``), for an import of
        thousands to ask in one step what ``following`` asks by going through the list."""
        found: dict[str, str] = {}
        for e in self.entries:
            url = e.node.get("url") if isinstance(e.node, CommentedMap) else None
            if url is not None:
                found.setdefault(url_key(str(url)), str(e.node.get("name", "(unnamed)")))
        return found

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

    def added(self, entry: dict[str, Any]) -> str:
        return self.added_all([entry])

    def added_all(self, entries: list[dict[str, Any]]) -> str:
        if self.seq is not None and self.entries and not self.seq.fa.flow_style():
            return self._append_entries(entries)  # the usual case: after the last entry
        if self.data is None or ("sources" not in self.data and not self.data.fa.flow_style()):
            return self._append_sources(entries)  # an empty file, or one without sources:
        if self.seq is None and self._bare_key_line() is not None:
            return self._insert_after_key(entries)  # "sources:" with nothing under it
        return self._rewritten(lambda seq: seq.extend(CommentedMap(e) for e in entries))

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

    def _append_entries(self, entries: list[dict[str, Any]]) -> str:
        lines = list(self.lines)
        last = self.entries[-1]
        blank = len(self.entries) > 1 and any(
            not line.strip() for line in lines[self.entries[-2].end : last.start]
        )
        if not lines[last.end - 1].endswith(("\n", "\r")):
            lines[last.end - 1] += self.newline  # a file without a final newline gets one
        gap = self.newline if blank else ""  # entries apart as the last two are
        block = "".join(gap + self._render(e, self.dash_col, self.key_col) for e in entries)
        return "".join([*lines[: last.end], block, *lines[last.end :]])

    def _append_sources(self, entries: list[dict[str, Any]]) -> str:
        text = self.text
        if text and not text.endswith(("\n", "\r")):
            text += self.newline
        if text.strip() and not text.endswith(self.newline * 2):
            text += self.newline
        return text + "sources:" + self.newline + "".join(self._render(e, 2, 4) for e in entries)

    def _bare_key_line(self) -> int | None:
        """The line of ``sources:`` when nothing but a comment follows it there."""
        assert self.data is not None
        line = self.data.lc.key("sources")[0]
        return line if re.match(r"^sources\s*:\s*(#.*)?$", self.lines[line].strip()) else None

    def _insert_after_key(self, entries: list[dict[str, Any]]) -> str:
        assert self.data is not None
        line = self._bare_key_line()
        assert line is not None
        lines = list(self.lines)
        if not lines[line].endswith(("\n", "\r")):
            lines[line] += self.newline
        dash = self.data.lc.key("sources")[1] + 2
        block = "".join(self._render(e, dash, dash + 2) for e in entries)
        return "".join([*lines[: line + 1], block, *lines[line + 1 :]])

    def _render(self, entry: dict[str, Any], dash_col: int, key_col: int) -> str:
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


def check_valid(text: str, file: str, original: str | None) -> None:
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
