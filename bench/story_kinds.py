"""The answer sets beyond papers: posts, releases and threads (``tests/data/answers_{posts,
releases,threads}.jsonl``), and the corpus they are asked over.

A question names its item by the fixture that holds it and the item's link; the corpus is
every entry of the recorded blog feeds (``../shared/fixtures/feeds/blogs``), the project's
release feeds (``tests/data/releases*``) and its Hacker News and Reddit fixtures
(``tests/data/threads``), each read by tracker's own parser, so that a question is asked over
several hundred stories of every kind, beside the papers. ``bench/answers.py --kinds``
uses this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.collect.sources.feed import parse_feed
from tracker.collect.sources.github import parse_releases_atom
from tracker.collect.sources.hackernews import parse_hits
from tracker.collect.sources.reddit import parse_listing
from tracker.models import ItemKind
from tracker.text import html_to_text
from tracker.urls import canonical_url

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
BLOGS = ROOT.parent / "shared" / "fixtures" / "feeds" / "blogs"
KINDS = ("post", "release", "thread")
SET_OF = {"answerable": "answerable", "out_of_corpus": "out_of_corpus", "in_topic": "unanswerable"}


@dataclass(frozen=True)
class Doc:
    id: str
    kind: ItemKind
    title: str
    text: str
    url: str
    #: Who publishes it, as a collector records it (``tracker.models.byline``).
    authors: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


def doc_id(fixture: str, link: str) -> str:
    return "k-" + hashlib.sha1(f"{fixture}\n{link}".encode()).hexdigest()[:16]


Found = tuple[str, str, str, str, Mapping[str, str], tuple[str, ...]]


def _blog_docs() -> Iterator[Found]:
    """(fixture, link, title, text, extra, authors) of every entry of the recorded blog
    feeds."""
    for path in sorted(BLOGS.glob("*")):
        if path.suffix not in (".xml", ".atom", ".rss", ".json", ".rdf") or "expected" in path.name:
            continue
        try:
            parsed = parse_feed(path.read_bytes(), f"https://example.org/{path.name}")
        except Exception:  # an edge case of the corpus, not a feed: not part of it
            continue
        extra = {"feed_title": parsed.title}
        for e in parsed.entries:
            text = html_to_text(e.content or e.summary or "")
            if e.link and text.strip():
                yield f"blogs/{path.name}", e.link, e.title or "", text, extra, e.authors


def _release_docs() -> Iterator[Found]:
    paths = [DATA / "releases.atom", *sorted((DATA / "releases").glob("*.atom"))]
    for path in paths:
        if not path.is_file():
            continue
        fixture = str(path.relative_to(DATA))
        repo = path.stem.replace("__", "/") if "__" in path.stem else "acme/infer"
        for r in parse_releases_atom(path.read_bytes(), f"https://github.com/{repo}", repo):
            yield fixture, r.url, r.name, r.notes, {"repo": repo}, r.authors


def _thread_docs() -> Iterator[Found]:
    for path in sorted((DATA / "threads").glob("*.json")):
        fixture = str(path.relative_to(DATA))
        parse = parse_hits if path.name.startswith("hn") else parse_listing
        links, _ = parse(path.read_bytes(), f"https://example.org/{path.name}")
        for link in links:
            url = canonical_url(link.url) if link.url else link.discussion
            authors = (link.author,) if link.author else ()
            yield fixture, url, link.title, link.text, {}, authors
            if link.url and link.url != url:  # the set may name the link as written
                yield fixture, link.url, link.title, link.text, {}, authors


def read_kind_sets() -> dict[str, list[dict[str, Any]]]:
    """The questions about posts, releases and threads, by set (answerable,
    out_of_corpus, unanswerable), as the bench's cases: ``paper`` is the item's doc id."""
    sets: dict[str, list[dict[str, Any]]] = {name: [] for name in SET_OF.values()}
    for kind in KINDS:
        path = DATA / f"answers_{kind}s.jsonl"
        if not path.is_file():
            continue
        for line in path.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            fixture = case.get("fixture") or f"blogs/{case['feed']}"
            bench_case = {
                "id": case["id"],
                "question": case["question"],
                "paper": doc_id(fixture, case["link"]),
                "split": case["split"],
                "kind": kind,
            }
            if case.get("remove_item"):
                bench_case["remove_paper"] = True
            if case.get("remove_sentences"):
                bench_case["remove_text"] = list(case["remove_sentences"])
            sets[SET_OF[case["set"]]].append(bench_case)
    return sets


def kind_docs(sets: Mapping[str, list[dict[str, Any]]]) -> dict[str, Doc]:
    """Every post, release and thread of the fixtures, by doc id; an entry a release
    question is about is a release, whatever feed carries it."""
    release_ids = {
        c["paper"] for cases in sets.values() for c in cases if c.get("kind") == "release"
    }
    docs: dict[str, Doc] = {}
    for source, kind in (
        (_blog_docs(), ItemKind.POST),
        (_release_docs(), ItemKind.RELEASE),
        (_thread_docs(), ItemKind.POST),
    ):
        for fixture, link, title, text, extra, authors in source:
            key = doc_id(fixture, link)
            if key in docs:
                continue
            own = ItemKind.RELEASE if key in release_ids else kind
            docs[key] = Doc(key, own, title, text, link, authors, extra)
    return docs
