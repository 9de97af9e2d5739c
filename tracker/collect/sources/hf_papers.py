"""Hugging Face Daily Papers: the community's pick of the day's arXiv papers, with upvotes.

The public JSON API (``https://huggingface.co/api/daily_papers``, no key) lists
the day's papers, each an arXiv paper with the Hugging Face page's upvotes and
comment count. A paper here is the same paper as on arXiv: its item carries the
arXiv id and abstract URL, so it joins the arXiv story (one story, both links),
and adds the community's votes to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from tracker.collect.sources.base import (
    CollectContext,
    count,
    implausible,
    implausible_note,
    parse_iso,
    parse_json,
)
from tracker.config.kinds import AddressRule, SourceKind, SourceSettings, VoteScale, Wanted
from tracker.errors import ParseError
from tracker.models import Engagement, Fetched, Item, ItemKind, content_hash
from tracker.text import normalise_space, one_line
from tracker.urls import split_arxiv_id


class HFPapersSource(SourceSettings):
    """Hugging Face Daily Papers: the community's pick of the day's papers, with upvotes."""

    kind: Literal["hf_papers"]
    min_upvotes: int = Field(default=0, ge=0, description="Skip papers with fewer upvotes.")


DAILY_PAPERS = "https://huggingface.co/api/daily_papers"
PAPER_PAGE = "https://huggingface.co/papers/{id}"


@dataclass(frozen=True)
class DailyPaper:
    arxiv_id: str
    title: str
    summary: str
    authors: tuple[str, ...]
    published: datetime | None
    upvotes: int
    comments: int


def parse_daily_papers(content: bytes, url: str) -> tuple[list[DailyPaper], list[str]]:
    """The papers of a Daily Papers answer, and what was skipped, in words."""
    data = parse_json(content, url, "the Daily Papers JSON")
    if not isinstance(data, list):
        said = data.get("error") if isinstance(data, dict) else None
        raise ParseError(
            f"{url} did not answer with a list of papers ({said or 'unexpected JSON'})"
        )
    papers: list[DailyPaper] = []
    unreadable = absurd = 0
    for raw in data:
        paper = raw.get("paper") if isinstance(raw, dict) else None
        if not isinstance(paper, dict):
            unreadable += 1
            continue
        try:
            arxiv_id, _ = split_arxiv_id(str(paper.get("id") or ""))
        except ValueError:
            unreadable += 1
            continue
        title = one_line(str(raw.get("title") or paper.get("title") or ""))
        if not title:
            unreadable += 1
            continue
        authors = tuple(
            one_line(str(a.get("name")))
            for a in paper.get("authors") or []
            if isinstance(a, dict) and a.get("name") and not a.get("hidden")
        )
        absurd += implausible(paper.get("upvotes"), raw.get("numComments"))
        papers.append(
            DailyPaper(
                arxiv_id=arxiv_id,
                title=title,
                summary=normalise_space(str(paper.get("summary") or raw.get("summary") or "")),
                authors=authors,
                published=parse_iso(paper.get("publishedAt")) or parse_iso(raw.get("publishedAt")),
                upvotes=count(paper.get("upvotes")),
                comments=count(raw.get("numComments")),
            )
        )
    warnings = (
        [f"{unreadable} entries without a usable arXiv id or title skipped"] if unreadable else []
    )
    return papers, warnings + implausible_note(absurd, "paper")


class HFPapersCollector:
    """Collects today's Daily Papers (or the ``url:`` given, e.g. ``?date=2026-11-27``)."""

    def collect(self, source: HFPapersSource, ctx: CollectContext) -> Fetched:
        response = ctx.get(source.url or DAILY_PAPERS, ctx.validators, accept="application/json")
        if response.not_modified:
            return Fetched(items=[], not_modified=True, validators=ctx.validators)
        papers, warnings = parse_daily_papers(response.content, response.url)
        if not papers and not warnings:
            warnings.append("Daily Papers listed no papers (a weekend or an early hour)")
        kept = [p for p in papers if p.upvotes >= source.min_upvotes]
        return Fetched(
            items=[paper_item(source, p) for p in kept],
            validators=response.validators,
            warnings=tuple(warnings),
        )


def paper_item(source: HFPapersSource, paper: DailyPaper) -> Item:
    """The paper as arXiv names it (so it joins the arXiv story), discussed on its Hugging
    Face page."""
    return Item(
        id=f"hf:{paper.arxiv_id}",
        source=source.name,
        source_kind=source.kind,
        kind=ItemKind.PAPER,
        url=f"https://arxiv.org/abs/{paper.arxiv_id}",
        title=paper.title,
        text=paper.summary,
        authors=paper.authors,
        published=paper.published,
        extra=_extra(paper),
        fingerprint=content_hash(paper.arxiv_id, paper.title, paper.summary),
        engagement=Engagement(source.kind, paper.upvotes, paper.comments),
    )


def _extra(paper: DailyPaper) -> dict[str, Any]:
    return {"arxiv_id": paper.arxiv_id, "discussion": PAPER_PAGE.format(id=paper.arxiv_id)}


_HF_PAPERS = re.compile(
    r"^(?:https?://)?(?:www\.)?huggingface\.co/papers/?(?:[?#].*)?$", re.IGNORECASE
)


def daily_papers_wanted(text: str, explicit: bool) -> Wanted | None:
    if not _HF_PAPERS.match(text):
        return None
    return Wanted("hf_papers", (), "https://huggingface.co/papers", "hf-papers")


KIND = SourceKind(
    name="hf_papers",
    settings=HFPapersSource,
    collector=HFPapersCollector(),
    # A handful of papers a day, picked through the day.
    interval=timedelta(hours=3),
    # A Daily Papers pick has 20-150 upvotes.
    votes=VoteScale("Hugging Face", "upvotes", hit=100),
    address=AddressRule(
        daily_papers_wanted,
        "https://huggingface.co/papers",
        lambda node, wanted: node.get("kind") == "hf_papers",
    ),
)
