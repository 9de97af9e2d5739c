"""Turning the HTML that feeds carry into plain text. Pure functions."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import lxml.etree
import lxml.html

_BLOCK = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "table",
    "tr",
    "section",
    "article",
    "header",
    "footer",
    "hr",
    "figure",
}
_DROP = ("script", "style", "noscript", "iframe", "template")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_LOOKS_LIKE_HTML = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|&[a-zA-Z#0-9]+;")


def html_to_text(markup: str) -> str:
    """Readable text from an HTML fragment: paragraphs kept, markup and scripts dropped."""
    if not markup:
        return ""
    if not _LOOKS_LIKE_HTML.search(markup):
        return normalise_space(markup)
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return normalise_space(re.sub(r"<[^>]+>", " ", markup))
    for bad in root.iter(*_DROP):
        bad.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK:
            element.tail = "\n" + (element.tail or "")
            if element.tag.lower() != "br":
                element.text = "\n" + (element.text or "")
    return normalise_space(root.text_content())


def normalise_space(text: str) -> str:
    """Collapse runs of spaces; keep paragraph breaks as one blank line."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    joined = "\n".join(lines)
    return _BLANK_LINES.sub("\n\n", joined).strip()


def outbound_links(markup: str, base: str, limit: int = 50) -> list[str]:
    """The links an HTML fragment points at, absolute, in order, at most ``limit``.

    Plain text loses them, and they say what a post is about (the paper it
    announces, the release it discusses).
    """
    if not markup or "href" not in markup:
        return []
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return []
    links: list[str] = []
    for anchor in root.iter("a"):
        href = (anchor.get("href") or "").strip()
        if href and not href.startswith(("#", "mailto:", "javascript:")):
            absolute = urljoin(base, href)
            if absolute not in links:
                links.append(absolute)
        if len(links) >= limit:
            break
    return links


def unwrap(text: str) -> str:
    """Hard-wrapped plain text (arXiv abstracts) as paragraphs of single lines."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def one_line(text: str) -> str:
    """Titles and names: markup removed, all whitespace collapsed to single spaces."""
    return " ".join(html_to_text(text).split())


def plural(n: int, noun: str, many: str | None = None) -> str:
    """ "1 source", "3 sources"; ``many`` where the plural is not the noun and an s
    ("1 story", "2 stories"). Every count a person reads goes through here."""
    if n == 1:
        return f"{n} {noun}"
    if many is None:
        many = (
            noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
        )
    return f"{n} {many}"


#: Where one sentence ends and the next begins: after . ! or ? and before what can start
#: a sentence (a capital, a digit, an opening quote or bracket). "e.g. the" does not split.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])")
