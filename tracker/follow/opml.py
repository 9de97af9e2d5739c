"""OPML, the subscription lists feed readers import and export: reading and writing them.

Pure: bytes in, subscriptions out (``read_opml``); subscriptions in, bytes out
(``write_opml``). This module also owns how a reader's folders map to tracker's
tags, both ways, so that export then import gives back the same feeds and tags:

- on import, the folders around a feed (nested ``<outline>`` elements without
  ``xmlUrl``) and the parts of its ``category`` attribute become its tags,
  slugged and lower-case (``tags_of``);
- on export, a feed sits in the folder of its first tag, and a feed with more
  than one tag also carries them all in ``category="/blog,/vendor"`` (OPML 2.0),
  because most readers keep a single level of folders (``subscription_for``).

OPML files come from strangers (a blogroll shared on the web), so the XML is
read by expat with any DTD refused: nothing declared in the file can expand
(the "billion laughs") or be fetched (external entities). defusedxml does the
same, but it is not a dependency of tracker.
"""

from __future__ import annotations

import html
import re
import unicodedata
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tracker.errors import UserError

#: What a reader's export menu is usually called, for messages that say what to do.
_EXPORT_HINT = "export your subscriptions from your feed reader as OPML and import that file"


@dataclass(frozen=True)
class Subscription:
    """One feed of an OPML file: an ``<outline>`` with an ``xmlUrl``."""

    url: str
    #: Its ``title`` (or ``text``) as a reader shows it, entities decoded.
    title: str = ""
    #: The titles of the folders around it, outermost first.
    folders: tuple[str, ...] = ()
    #: The parts of its ``category`` attribute (``"/a/b,/c"`` gives a, b, c).
    categories: tuple[str, ...] = ()
    #: The line of the file it is on (0 when written, not read).
    line: int = 0


@dataclass(frozen=True)
class NotAFeed:
    """An outline that is neither a folder nor a feed, and why it is left out."""

    title: str
    line: int
    reason: str


@dataclass(frozen=True)
class Opml:
    """What an OPML file holds, in document order."""

    title: str = ""
    feeds: list[Subscription] = field(default_factory=list)
    skipped: list[NotAFeed] = field(default_factory=list)


class _Refused(Exception):
    """Stops expat at the first thing an OPML file must not contain."""


# --- reading ------------------------------------------------------------------------------


#: Outlines one file may hold: a reader's export is hundreds, the largest lists a few
#: thousand; past this it is not a list of subscriptions (and would be a huge sources.yaml).
MAX_OUTLINES = 50_000
#: Tags one imported source gets at most: its outermost folders, then its categories.
MAX_TAGS = 8


def read_opml(data: bytes, file: str = "the file") -> Opml:
    """The subscriptions in an OPML document; a UserError naming ``file`` if it is not one.

    Lenient about what readers write differently (attribute case, ``title`` or
    ``text``, entities left in titles, OPML 1.0/1.1/2.0), strict about XML.
    """
    if not data.strip():
        raise UserError(f"{file} is empty; {_EXPORT_HINT}")
    reader = _Reader(file)
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = reader.doctype
    parser.EntityDeclHandler = reader.entity
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    reader.parser = parser
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise UserError(str(exc)) from None
    except expat.ExpatError as exc:
        raise UserError(_xml_message(data, file, exc)) from None
    if not reader.seen_body:
        raise UserError(f"{file} is OPML without a <body>, so it lists no feeds; {_EXPORT_HINT}")
    return Opml(reader.head_title.strip(), reader.feeds, sorted(reader.skipped, key=_by_line))


def _by_line(item: NotAFeed) -> int:
    return item.line


@dataclass
class _Open:
    """An ``<outline>`` whose end tag has not been read yet."""

    attrs: dict[str, str]
    line: int
    is_feed: bool
    has_children: bool = False


class _Reader:
    """expat's handlers: the outlines of ``<body>`` as feeds, folders and the rest."""

    def __init__(self, file: str):
        self.file = file
        self.parser: expat.XMLParserType | None = None
        self.path: list[str] = []
        self.outlines: list[_Open] = []
        self.feeds: list[Subscription] = []
        self.skipped: list[NotAFeed] = []
        self.head_title = ""
        self.seen_body = False
        #: The titles of the folders (outlines without xmlUrl) around the current one.
        self.folders: list[str] = []
        self.count = 0

    def _line(self) -> int:
        return self.parser.CurrentLineNumber if self.parser is not None else 0

    def doctype(self, name: str, *_: object) -> None:
        if name.lower() == "html":
            raise _Refused(_not_opml(self.file, "html"))
        raise _Refused(
            f"{self.file}:{self._line()}: the file has a <!DOCTYPE> declaration, which OPML "
            "does not use and tracker refuses (it can declare entities that expand without "
            "bound). Remove the <!DOCTYPE ...> line and import the file again"
        )

    def entity(self, *_: object) -> None:  # only reachable through a DOCTYPE; belt and braces
        raise _Refused(f"{self.file}:{self._line()}: the file declares an entity; tracker refuses")

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        name = _local(tag)
        if not self.path and name != "opml":
            raise _Refused(_not_opml(self.file, name))
        self.path.append(name)
        if name == "body" and self.path == ["opml", "body"]:
            self.seen_body = True
        if name != "outline" or self.path[:2] != ["opml", "body"]:
            return
        self.count += 1
        if self.count > MAX_OUTLINES:
            raise _Refused(
                f"{self.file}:{self._line()}: the file has more than {MAX_OUTLINES:,} "
                "outlines, more than any reader's list of subscriptions; split it into "
                "smaller files and import each"
            )
        if self.outlines:
            self.outlines[-1].has_children = True
        attrs = {k.lower(): v for k, v in attributes.items()}
        url = (attrs.get("xmlurl") or "").strip()
        line = self._line()
        self.outlines.append(_Open(attrs, line, is_feed=bool(url)))
        if not url:
            self.folders.append(_title(attrs))
        else:
            # The outermost folders only: a list nested 100,000 deep is not 100,000 tags.
            folders = [f for f in self.folders[: MAX_TAGS * 4] if f][: MAX_TAGS + 1]
            self.feeds.append(
                Subscription(
                    url=url,
                    title=_title(attrs),
                    folders=tuple(folders),
                    categories=_categories(attrs.get("category", "")),
                    line=line,
                )
            )

    def end(self, tag: str) -> None:
        name = self.path.pop() if self.path else _local(tag)
        if name != "outline" or not self.outlines:
            return
        outline = self.outlines.pop()
        if not outline.is_feed and self.folders:
            self.folders.pop()
        if not outline.is_feed and not outline.has_children:
            title = _title(outline.attrs) or "(an outline without a title)"
            self.skipped.append(NotAFeed(title, outline.line, _why_not(outline.attrs)))

    def text(self, data: str) -> None:
        if self.path == ["opml", "head", "title"]:
            self.head_title += data


def _local(tag: str) -> str:
    """``{namespace}opml`` and ``opml`` alike: a few writers add a namespace."""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def _title(attrs: dict[str, str]) -> str:
    """What a reader shows: ``title``, else ``text``. Readers often escape the HTML entities
    of a feed's title once more (``&amp;#8217;``), so they are decoded here."""
    raw = attrs.get("title") or attrs.get("text") or ""
    return " ".join(html.unescape(raw).split())


def _categories(value: str) -> tuple[str, ...]:
    parts = (p.strip() for item in value.split(",") for p in item.split("/"))
    return tuple(html.unescape(p) for p in parts if p)


def _why_not(attrs: dict[str, str]) -> str:
    kind = attrs.get("type", "").lower()
    if kind == "include":
        return (
            "it includes another OPML file; download that file "
            f"({attrs.get('url', 'its url=')}) and import it too"
        )
    page = (attrs.get("url") or attrs.get("htmlurl") or "").strip()
    if page:
        return (
            f"it has no xmlUrl, only the page {page}; add it with "
            f"`tracker sources add {page}`, which finds the feed the page links to"
        )
    return "it has no xmlUrl (an empty folder, or a note): there is no feed to follow"


def _not_opml(file: str, root: str) -> str:
    if root in ("rss", "feed", "rdf"):
        return (
            f"{file} is a feed, not an OPML subscription list; follow it with "
            "`tracker sources add URL-OF-THE-FEED`, or import an OPML export instead"
        )
    if root == "html":
        return f"{file} is an HTML page, not OPML; {_EXPORT_HINT}"
    return f"{file} is not OPML: its root element is <{root}>, not <opml>; {_EXPORT_HINT}"


def _xml_message(data: bytes, file: str, exc: expat.ExpatError) -> str:
    head = data[:2048].lower()
    if b"<html" in head or b"<!doctype html" in head:
        return _not_opml(file, "html")
    reason = expat.errors.messages.get(exc.code, str(exc))
    fix = (
        "a bare & must be written &amp;, and HTML entities such as &nbsp; are not XML"
        if "entity" in reason or "token" in reason
        else "the file is cut short or was changed by hand"
    )
    return (
        f"{file}:{exc.lineno}: not well-formed XML ({reason}, column {exc.offset + 1}). "
        f"OPML is XML: {fix}; fix that line or {_EXPORT_HINT}"
    )


# --- folders and tags -----------------------------------------------------------------------


def tag(text: str) -> str:
    """A folder's name as a tag: ``Machine Learning`` -> ``machine-learning``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain.replace("'", "")).strip("-")[:40].strip("-")


def tags_of(feed: Subscription) -> list[str]:
    """The tags an imported feed gets: its folders', then its categories', each once; at
    most ``MAX_TAGS`` (``too_many_tags`` tells when some were left)."""
    return _all_tags(feed)[:MAX_TAGS]


def too_many_tags(feed: Subscription) -> bool:
    return len(_all_tags(feed)) > MAX_TAGS


def _all_tags(feed: Subscription) -> list[str]:
    tags = (tag(t) for t in (*feed.folders, *feed.categories[: MAX_TAGS * 4]))
    return list(dict.fromkeys(t for t in tags if t))


def subscription_for(name: str, url: str, tags: Sequence[str]) -> Subscription:
    """A followed feed as an outline: in its first tag's folder, every tag in ``category``
    when one folder cannot carry them all, so ``tags_of`` gives the same tags back."""
    return Subscription(
        url=url,
        title=name,
        folders=tuple(tags[:1]),
        categories=tuple(tags) if len(tags) > 1 else (),
    )


# --- writing ------------------------------------------------------------------------------


def write_opml(feeds: Iterable[Subscription], title: str = "tracker sources") -> bytes:
    """An OPML 2.0 document: one folder outline per folder path, in order of first use."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}
    for feed in feeds:
        parent = body
        for depth in range(1, len(feed.folders) + 1):
            path = feed.folders[:depth]
            if path not in folders:
                folders[path] = ET.SubElement(parent, "outline", text=path[-1], title=path[-1])
            parent = folders[path]
        attrs = {"type": "rss", "text": feed.title, "title": feed.title, "xmlUrl": feed.url}
        if feed.categories:
            attrs["category"] = ",".join("/" + c for c in feed.categories)
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "utf-8") + b"\n"
