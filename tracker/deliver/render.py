"""A digest as Markdown (files, terminals) and as JSON (scripts). Pure functions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tracker.models import Digest


def to_json(digest: Digest) -> dict[str, Any]:
    return {
        "created": digest.created.isoformat(),
        "title": digest.title,
        "since": digest.since.isoformat() if digest.since else None,
        "quiet": digest.quiet,
        "unreachable_since": (
            digest.unreachable_since.isoformat() if digest.unreachable_since else None
        ),
        "left_out": digest.left_out,
        "closing": digest.closing,
        "headline": digest.headline,
        "sections": [
            {
                "name": section.name,
                "entries": [
                    {
                        "story_id": e.story_id,
                        "kind": e.kind.value,
                        "title": e.title,
                        "summary": e.summary,
                        "sources": list(e.sources),
                        "links": list(e.links),
                        "update": e.update,
                        "score": e.score,
                        "pinned": e.pinned,
                        "engagement": e.engagement,
                    }
                    for e in section.entries
                ],
            }
            for section in digest.sections
        ],
    }


def to_markdown(digest: Digest) -> str:
    name = f"AI engineering digest: {digest.title}" if digest.title else "AI engineering digest"
    lines = [f"# {_md(name)}, {digest.created:%d %b %Y}", ""]
    if digest.headline:
        lines += [_md(line) + "  " for line in digest.headline.splitlines()] + [""]
    if digest.quiet:
        lines.append(digest.quiet_note)
        if digest.closing:
            lines += ["", f"*{_md(digest.closing)}*"]
        return "\n".join(lines) + "\n"
    for section in digest.sections:
        lines += [f"## {_md(section.name)}", ""]
        for entry in section.entries:
            flag = f" *(updated: {_md(entry.update)})*" if entry.update else ""
            lines.append(f"### {_md(entry.title)}{flag}")
            if entry.summary:
                lines.append("")
                lines.append(_md(entry.summary))
            if entry.engagement:
                lines += ["", f"▲ {_md(entry.engagement)}"]
            links = " · ".join(
                f"[{_md(urlsplit(u).hostname or u)}]({_url(u)})" for u in entry.links
            )
            # A source's name is the user's, or a feed's title made into one: literal too.
            lines += ["", f"{', '.join(_md(s) for s in entry.sources)}: {links}", ""]
    if digest.left_out:
        lines.append(f"*{digest.left_out} more stories did not make the cut.*")
    if digest.closing:
        while lines and not lines[-1]:
            lines.pop()
        lines += ["", f"*{_md(digest.closing)}*"]
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """Scraped text as literal Markdown: no stray emphasis, links or headings."""
    out = []
    for char in text:
        if char in "\\`*_[]<>#|":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
