"""The digest as Discord messages: plain data that respects every Discord limit. Pure.

This module owns the Discord shape of a digest (one embed per story, so readers
can react to a story and open a thread on it; section headers in the message
content) and the limits Discord enforces on it. Sending is someone else's job:
the bot posts the messages one at a time and records ``story_ids`` as posted.

Lengths are counted in UTF-16 code units everywhere (``len16``), which is what
Discord counts for some limits and never less than Python's character count,
so a text that fits here fits there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tracker.deliver.digest import PINNED
from tracker.models import Digest, DigestEntry, DigestSection, ItemKind

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
CONTENT_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBEDS_TOTAL = 6000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_PER_EMBED = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
URL_LIMIT = 2048

#: A footer short enough that any one embed we build fits a message on its own.
_FOOTER_BUDGET = min(FOOTER_LIMIT, EMBEDS_TOTAL - TITLE_LIMIT - DESCRIPTION_LIMIT)
#: Room kept for the summary when a story has more links than fit beside it.
_SUMMARY_RESERVE = 1200
_UPDATE_BUDGET = 400
_SECTION_NAME_BUDGET = 200

ELLIPSIS = "…"
ZWSP = "\u200b"

_SECTION_EMOJI = {"Papers": "📄", "Posts": "✍️", "Releases": "📦", PINNED: "⚠️"}
_COLOURS = {
    ItemKind.PAPER: 0x3B82F6,
    ItemKind.POST: 0x10B981,
    ItemKind.RELEASE: 0x8B5CF6,
}
_PINNED_COLOUR = 0xEF4444
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class EmbedField:
    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True)
class Embed:
    title: str | None = None
    description: str | None = None
    #: The story's first (usable) link: the title links to it.
    url: str | None = None
    fields: tuple[EmbedField, ...] = ()
    footer: str | None = None
    color: int | None = None

    def size(self) -> int:
        """The characters Discord counts towards a message's 6000 (in UTF-16 units)."""
        texts = [self.title, self.description, self.footer]
        texts += [t for f in self.fields for t in (f.name, f.value)]
        return sum(len16(t) for t in texts if t)

    def to_dict(self) -> dict[str, Any]:
        """The embed as Discord's API JSON, without empty keys."""
        out: dict[str, Any] = {"type": "rich"}
        if self.title is not None:
            out["title"] = self.title
        if self.description is not None:
            out["description"] = self.description
        if self.url is not None:
            out["url"] = self.url
        if self.color is not None:
            out["color"] = self.color
        if self.fields:
            out["fields"] = [
                {"name": f.name, "value": f.value, "inline": f.inline} for f in self.fields
            ]
        if self.footer is not None:
            out["footer"] = {"text": self.footer}
        return out


@dataclass(frozen=True)
class DiscordMessage:
    content: str = ""
    embeds: tuple[Embed, ...] = ()
    #: The stories this message carries, in order (recorded as posted once it is sent).
    story_ids: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        """The JSON body for "create message"; it never pings anyone."""
        return {
            "content": self.content,
            "embeds": [e.to_dict() for e in self.embeds],
            "allowed_mentions": {"parse": []},
        }


def len16(text: str) -> int:
    """Length in UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# --- escaping -------------------------------------------------------------------------------

_MENTION = re.compile(r"@(?=everyone|here)|<(?=[@#:/]|a:|t:)", re.IGNORECASE)
_MARKDOWN = str.maketrans({ch: "\\" + ch for ch in "\\*_~`|>#[]()"})
# Line starts that Discord would turn into a list ("- x", "1. x").
_LIST_START = re.compile(r"(?m)^([ \t]*)(?:(-)|(\d+)\.(?=[ \t]))")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def escape_markdown_and_mentions(text: str) -> str:
    """``text`` as it reads, with no formatting and no ping.

    Mentions (@everyone, @here, <@id>, <@&id>, <#id>, and the <:emoji:>, </cmd:>,
    <t:> forms) get a zero-width space after "@" or "<"; Markdown specials get a
    backslash, which Discord hides. ``allowed_mentions`` already stops pings;
    this also stops scraped text from *looking* like a mention or formatting.
    """
    text = _MENTION.sub(lambda m: m.group(0) + ZWSP, text)
    text = text.translate(_MARKDOWN)
    return _LIST_START.sub(_escape_list_start, text)


def _escape_list_start(m: re.Match[str]) -> str:
    # "\-" hides the dash; a backslash before a digit would show, so escape the dot.
    return m.group(1) + ("\\-" if m.group(2) else m.group(3) + "\\.")


def _plain(text: str) -> str:
    """For footers, which Discord shows without Markdown: only mentions neutralised."""
    return _MENTION.sub(lambda m: m.group(0) + ZWSP, text)


def clean(text: str | None, *, one_line: bool = False) -> str:
    """Scraped text without control characters or lone surrogates; tidy whitespace."""
    text = _CONTROL.sub(lambda m: "" if m.group(0) < "\ud800" else "\ufffd", text or "")
    if one_line:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- shortening -----------------------------------------------------------------------------


def shorten(
    raw: str, limit: int, render: Callable[[str], str] = escape_markdown_and_mentions
) -> str:
    """``render(raw)`` if it fits ``limit`` UTF-16 units, else a prefix ending in "…".

    The cut is made in ``raw`` (so an escape is never split) at a word boundary,
    or, when not even the first word fits, between two graphemes.
    """
    whole = render(raw)
    if len16(whole) <= limit:
        return whole
    if limit < len16(ELLIPSIS):
        return ""

    def fits(end: int) -> bool:
        return len16(render(raw[:end])) + len16(ELLIPSIS) <= limit

    word_ends = [m.start() for m in _WORD_END.finditer(raw)]
    end = _last_fitting(word_ends, fits)
    if end is None:
        end = _last_fitting([i for i in range(1, len(raw)) if _grapheme_boundary(raw, i)], fits)
    return ELLIPSIS if end is None else render(raw[:end]) + ELLIPSIS


_WORD_END = re.compile(r"(?<=\S)\s")


def _last_fitting(cuts: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    """The largest cut that fits, by bisection (a longer prefix never renders shorter)."""
    lo, hi = 0, len(cuts)  # answer is cuts[lo - 1]; invariant: cuts[:lo] fit
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(cuts[mid]):
            lo = mid + 1
        else:
            hi = mid
    return cuts[lo - 1] if lo else None


def _grapheme_boundary(text: str, i: int) -> bool:
    """Whether cutting between text[i-1] and text[i] keeps user-perceived characters whole.

    An approximation of UAX #29 good enough for a cut: it never separates a
    combining mark, variation selector, skin tone, tag or ZWJ sequence from its
    base, nor the two halves of a flag.
    """
    before, after = text[i - 1], text[i]
    if before == "\r" and after == "\n":
        return False
    if before == "\u200d" or after == "\u200d":
        return False
    code = ord(after)
    if (
        unicodedata.category(after) in ("Mn", "Mc", "Me")
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    ):
        return False
    if _regional(after) and _regional(before):
        run = 0
        while i - 1 - run >= 0 and _regional(text[i - 1 - run]):
            run += 1
        return run % 2 == 0
    return True


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


# --- links ----------------------------------------------------------------------------------

_URL_UNSAFE = re.compile(r"[\s()<>\[\]\"\\`]")


def usable_url(link: str) -> str | None:
    """``link`` made safe inside a Markdown link target and as an embed url, or None.

    Only absolute http(s) links qualify; characters that would end or confuse a
    ``[label](url)`` target (")" above all) are percent-encoded outside the host.
    """
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if _URL_UNSAFE.search(parts.netloc) or _CONTROL.search(link):
        return None
    head = f"{parts.scheme}://{parts.netloc}"
    tail = _URL_UNSAFE.sub(_percent_encode, link[len(head) :])
    url = head + tail
    return url if len(url) <= URL_LIMIT else None


def _percent_encode(m: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in m.group(0).encode())


def link_markdown(link: str) -> str:
    url = usable_url(link)
    if url is None:  # shown, but not as a link: it would not work as one
        return escape_markdown_and_mentions(clean(link, one_line=True))
    host = (urlsplit(url).hostname or url).removeprefix("www.")
    return f"[{escape_markdown_and_mentions(host)}]({url})"


def _links_line(links: Sequence[str], budget: int) -> str:
    """The links as one line within ``budget`` units, or "".

    ``🔗 [host](url) · [host](url) (+N more links)``: masked links render in
    embed descriptions; those that do not fit are counted, never silently lost.
    """
    if not links or budget <= 0:
        return ""
    prefix, sep = "🔗 ", " · "
    rendered = [link_markdown(link) for link in links]
    every = prefix + sep.join(rendered)
    if len16(every) <= budget:
        return every

    def more(n: int) -> str:
        return f"(+{n} more link{'s' if n != 1 else ''})"

    room = budget - len16(prefix) - len16(" " + more(len(links)))
    kept: list[str] = []
    used = 0
    for text in rendered:  # in order, skipping any that do not fit (keeps the most)
        cost = len16(text) + (len16(sep) if kept else 0)
        if used + cost <= room:
            kept.append(text)
            used += cost
    dropped = len(links) - len(kept)
    if not kept:
        line = f"🔗 {more(dropped)}"
        return line if len16(line) <= budget else ""
    return prefix + sep.join(kept) + " " + more(dropped)


# --- embeds and messages --------------------------------------------------------------------


def story_embed(entry: DigestEntry, pinned: bool = False) -> Embed:
    """One story as one embed, within every per-embed limit and small enough to send alone."""
    title = shorten(clean(entry.title, one_line=True) or "(untitled)", TITLE_LIMIT)
    links = list(dict.fromkeys(link for link in entry.links if link.strip()))
    url = next((u for u in map(usable_url, links) if u), None)

    blocks: list[str] = []
    if entry.update is not None:
        note = clean(entry.update, one_line=True) or "updated"
        label = "**Updated:** "
        blocks.append(label + shorten(note, _UPDATE_BUDGET - len16(label)))
    if entry.engagement:
        blocks.append("▲ " + shorten(clean(entry.engagement, one_line=True), _UPDATE_BUDGET))
    summary_raw = clean(entry.summary)
    summary_full = escape_markdown_and_mentions(summary_raw)
    gap = len16("\n\n")
    room = DESCRIPTION_LIMIT - sum(len16(b) + gap for b in blocks)
    # Links first, but never at the cost of the whole summary.
    summary_share = min(len16(summary_full) + gap, _SUMMARY_RESERVE) if summary_raw else 0
    links_line = _links_line(links, room - summary_share)
    if links_line:
        room -= len16(links_line) + gap
    if summary_raw:
        summary = shorten(summary_raw, room)
        if summary:
            blocks.append(summary)
    if links_line:
        blocks.append(links_line)
    description = "\n\n".join(blocks) or None

    footer = _sources_footer(entry.sources)
    colour = _PINNED_COLOUR if pinned or entry.pinned else _COLOURS.get(entry.kind)
    return Embed(title=title, description=description, url=url, footer=footer, color=colour)


def _sources_footer(sources: Sequence[str]) -> str | None:
    """``via a, b, c (+N more)`` within the footer budget, or None without sources.

    Footers show no Markdown, so only mentions are neutralised (a backslash would show).
    """
    names = [clean(s, one_line=True) for s in sources]
    names = [n for n in names if n]
    if not names:
        return None
    whole = _plain("via " + ", ".join(names))
    if len16(whole) <= _FOOTER_BUDGET:
        return whole
    for keep in range(len(names) - 1, 0, -1):
        text = _plain("via " + ", ".join(names[:keep])) + f" (+{len(names) - keep} more)"
        if len16(text) <= _FOOTER_BUDGET:
            return text
    return shorten("via " + names[0], _FOOTER_BUDGET, _plain)


#: A headline line's share of the first message (three of them, with the heading, fit well
#: inside its 2,000 characters).
HEADLINE_LINE = 400


def _heading(digest: Digest) -> str:
    day = digest.created
    name = "AI engineering digest"
    if digest.title:
        name += ": " + shorten(clean(digest.title, one_line=True), 80)
    return f"**{name} — {day.day} {_MONTHS[day.month - 1]} {day.year}**"


def _left_out_note(n: int) -> str:
    return f"{n} more {'story' if n == 1 else 'stories'} didn't make the cut."


def _section_header(section: DigestSection, continued: bool) -> str:
    emoji = _SECTION_EMOJI.get(section.name, "📌")
    name = shorten(clean(section.name, one_line=True) or "Stories", _SECTION_NAME_BUDGET)
    return f"**{emoji} {name}**" + (" (continued)" if continued else "")


def render_discord(
    digest: Digest, embeds_per_message: int = EMBEDS_PER_MESSAGE
) -> list[DiscordMessage]:
    """The digest as Discord messages, in posting order.

    Each section starts a new message whose content carries the section header
    (the first message also carries the digest heading); a section's stories are
    then packed as embeds, starting a new message before one would exceed 10
    embeds or 6000 characters. Nothing is dropped: a long digest becomes more
    messages. A quiet digest is one message that says so.

    The bot posts with ``embeds_per_message=1``: one story per message, so that a
    reaction or a thread on a message belongs to exactly one story.
    """
    embeds_per_message = max(1, min(embeds_per_message, EMBEDS_PER_MESSAGE))
    intro = [_heading(digest)]
    if digest.headline:
        intro += [
            shorten(clean(line, one_line=True), HEADLINE_LINE)
            for line in digest.headline.splitlines()[:3]
        ]
    if digest.left_out > 0:
        intro.append(_left_out_note(digest.left_out))
    if digest.quiet:
        intro.append(digest.quiet_note)
        if digest.closing:
            intro.append(shorten(clean(digest.closing, one_line=True), HEADLINE_LINE))
        return [DiscordMessage(content=_fit_content("\n".join(intro)))]

    messages: list[DiscordMessage] = []
    for section in digest.sections:
        if not section.entries:
            continue
        pinned = section.name == PINNED
        batches: list[list[tuple[Embed, str]]] = [[]]
        size = 0
        for entry in section.entries:
            embed = story_embed(entry, pinned=pinned)
            batch = batches[-1]
            if batch and (len(batch) == embeds_per_message or size + embed.size() > EMBEDS_TOTAL):
                batch, size = [], 0
                batches.append(batch)
            batch.append((embed, entry.story_id))
            size += embed.size()
        for n, batch in enumerate(batches):
            # One story per message: the header once, above the section's first story.
            single = embeds_per_message == 1 and n > 0
            content = "" if single else _section_header(section, continued=n > 0)
            if not messages:
                content = "\n".join(intro) + "\n\n" + content
            messages.append(
                DiscordMessage(
                    content=_fit_content(content),
                    embeds=tuple(e for e, _ in batch),
                    story_ids=tuple(i for _, i in batch),
                )
            )
    if digest.closing and messages:
        # Said after the last story, as a message of its own: a story's message stays its own.
        closing = shorten(clean(digest.closing, one_line=True), HEADLINE_LINE)
        messages.append(DiscordMessage(content=_fit_content(closing)))
    return messages


def _fit_content(text: str) -> str:
    # Everything in content is built here from bounded parts; this is the last guard.
    return text if len16(text) <= CONTENT_LIMIT else shorten(text, CONTENT_LIMIT, lambda s: s)
