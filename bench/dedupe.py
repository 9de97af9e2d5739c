"""Measure story merging (dedupe) on labelled pairs and choose the near-duplicate threshold.

For every labelled pair (a, b) the script makes the decision the pipeline makes when b
arrives while a's story is a recent candidate (``tracker.understand.process.Pipeline._place``):

1. exact keys: ``tracker.understand.stories.item_keys`` of both items; a's strong and weak keys are
   the story's key index;
2. failing that, cosine similarity of the two first-chunk embeddings
   (``chunk_text(title, text)[0].text`` embedded with ``LocalMiniLM``) against a threshold;

both through ``tracker.understand.stories.assign`` itself. Items are built as the collectors build
them: the recorded feeds go through ``FeedCollector.collect`` (``full_text: never``, the
HTTP client replaced by one that answers with the recorded file) and the recorded arXiv
responses through ``parse_page`` and ``paper_item``, so the text is what the pipeline sees.

Datasets (read at run time from ``../shared/fixtures``; nothing is copied):

* ``cross_format``: ``dedupe/cross_format_feed_pairs.jsonl``, the same post in a site's
  Atom and JSON feeds (Daring Fireball, All this). Positives only.
* ``dblp_acm``: ``dedupe/dblp_acm/labeled_pairs.csv``, every labelled pair (no
  subsampling: 193 pairs embed in a few seconds). Records carry no abstract, so an item is
  what a collector would make of them: title (HTML entities decoded), authors, year, a
  dblp.org or dl.acm.org URL, kind paper, and empty text; the embedding is of the title.
* ``recorded_feeds``: built here from ``feeds/blogs`` and ``feeds/arxiv``:

  - positives, blogs: the same post seen through two formats of one site
    (``rsparser_DaringFireball.atom``/``.json``, ``rsparser_allthis.atom``/``.json``),
    matched on identical title and publication time, leaving out the pairs already in
    ``cross_format``. (``rsparser_DaringFireball.rss`` covers 2015-16, not the same posts;
    no other two recorded feeds share a post.)
  - positives, arXiv: a paper returned by two different recorded API responses (the
    overlapping pages of the "testing" search, and the two id_list responses that both hold
    1707.08567): one pair per paper, the first two responses in file-name order. (The
    id_list responses share no paper with the search responses.) These are always caught by
    the arXiv-id key.
  - negatives, hard: two *different* entries of the same feed (same author, same topics) or
    two different papers of the arXiv responses. For every item, its nearest other entry
    under each of three measures is paired with it: TF-IDF cosine of the first chunk (a
    model-free choice) and the embedding cosine of the first chunk and of the title alone
    (the pipeline's own notion of "nearest", for both variants measured here). Pairs whose
    title and text are both identical (one post listed twice) are left out, and so are the
    JSON twins of the Atom feeds above (their negatives would be the Atom ones again).

Two embedding variants are measured: ``title+text`` (the pipeline: the first chunk) and
``title`` (the title alone). Thresholds swept: 0.60 to 0.98 in steps of 0.02. Every
dataset's pairs are split into two halves (seeded, stratified by label): a threshold is
chosen on one half and reported on the other, both ways round, against the best threshold
of that other half. The recommendation maximises F0.5 (precision counts twice as much as
recall: merging two different stories loses one, missing a merge only shows a near
duplicate twice) on the pooled pairs of all three datasets, ties going to the higher
threshold.

Usage::

    .venv/bin/python bench/dedupe.py [--json] [--fixtures PATH] [--seed N]

Exits 2 if the fixtures cannot be found. About 28 s on the 2-core development machine,
most of it embedding 1,665 distinct texts (peak RSS ~0.5 GB).
"""

# ruff: noqa: E402  (tracker is imported after putting the project root on sys.path)

from __future__ import annotations

import argparse
import csv
import html
import json
import math
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, even when it is not installed in this Python
sys.path.insert(0, str(ROOT / "bench"))  # its sibling scripts

import httpx
import numpy as np
from collect import content_type_for  # bench/collect.py: how the recorded feeds are served

from tracker.collect.http import HttpClient, Response
from tracker.collect.sources.arxiv import ArxivSource, paper_item, parse_page
from tracker.collect.sources.base import CollectContext
from tracker.collect.sources.feed import FeedCollector, FeedSource
from tracker.errors import ParseError
from tracker.models import Candidate, Item, ItemKind, Validators
from tracker.text import one_line
from tracker.understand.chunking import chunk_text
from tracker.understand.embed import LocalMiniLM
from tracker.understand.stories import DEFAULT_THRESHOLD, assign, item_keys
from tracker.urls import canonical_url

DEFAULT_FIXTURES = ROOT.parent / "shared" / "fixtures"
THRESHOLDS = tuple(round(0.60 + 0.02 * i, 2) for i in range(20))  # 0.60 .. 0.98
DATASETS = ("cross_format", "dblp_acm", "recorded_feeds")
OVERALL = "overall"
VARIANTS = ("title+text", "title")
PIPELINE_VARIANT = "title+text"
#: F-beta used for the recommendation: beta 0.5 weighs precision twice as much as recall.
BETA = 0.5
NOW = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=14)
BLOG_PAIRS = (
    ("rsparser_DaringFireball.atom", "rsparser_DaringFireball.json"),
    ("rsparser_allthis.atom", "rsparser_allthis.json"),
)


@dataclass(frozen=True)
class Pair:
    dataset: str
    a: Item
    b: Item
    label: bool  # True: the same story
    origin: str  # where the pair comes from, for the breakdown


# --- building items as the collectors do --------------------------------------------------


class RecordedHttp:
    """Stands in for ``HttpClient``: every request is answered with one recorded file."""

    def __init__(self, content: bytes, content_type: str) -> None:
        self.content = content
        self.content_type = content_type

    def get(self, url: str, validators: Validators | None = None, **_: Any) -> Response:
        headers = httpx.Headers({"content-type": self.content_type})
        return Response(url=url, status=200, headers=headers, content=self.content)


def feed_items(path: Path) -> list[Item]:
    """The items ``FeedCollector`` stores for a recorded feed (``full_text: never``)."""
    source = FeedSource(
        name=path.name, kind="feed", url=f"https://feeds.example/{path.name}", full_text="never"
    )
    http = RecordedHttp(path.read_bytes(), content_type_for(path))
    fetched = FeedCollector().collect(source, CollectContext(http=cast(HttpClient, http)))
    return fetched.items


def arxiv_items(path: Path) -> list[Item]:
    """The items ``ArxivCollector`` stores for one recorded API response."""
    source = ArxivSource(name=path.stem, kind="arxiv", query="recorded")
    try:
        results, _ = parse_page(path.read_bytes(), path.name)
    except ParseError:
        return []  # arXiv's error feed (id_abc): nothing is stored
    return [paper_item(source, r) for r in results]


def blog_feed_files(folder: Path) -> list[Path]:
    """The recorded RSS, Atom and JSON feeds (not the HTML page, OPML or expected-output)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in (".xml", ".rss", ".atom", ".json")
        and p.name != "index.json"
        and ".expected_" not in p.name
    )


# --- datasets --------------------------------------------------------------------------


def cross_format_pairs(fixtures: Path) -> list[Pair]:
    blogs = fixtures / "feeds" / "blogs"
    parsed: dict[str, list[Item]] = {}
    pairs = []
    for line in (fixtures / "dedupe" / "cross_format_feed_pairs.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        sides = []
        for side in ("a", "b"):
            name = rec[f"{side}_file"]
            if name not in parsed:
                parsed[name] = feed_items(blogs / name)
            sides.append(_find(parsed[name], rec[f"{side}_link"], rec[f"{side}_title"], name))
        pairs.append(Pair("cross_format", sides[0], sides[1], True, f"{rec['site']} atom/json"))
    return pairs


def _find(items: list[Item], link: str, title: str, where: str) -> Item:
    url = canonical_url(link)
    found = [i for i in items if i.url == url and i.title == one_line(title)]
    if len(found) != 1:
        raise SystemExit(f"{where}: {len(found)} items for {link!r} ({title!r}), expected 1")
    return found[0]


def dblp_acm_pairs(fixtures: Path) -> list[Pair]:
    folder = fixtures / "dedupe" / "dblp_acm"
    dblp = _records(folder / "DBLP2.csv")
    acm = _records(folder / "ACM.csv")
    pairs = []
    with (folder / "labeled_pairs.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            a = record_item("dblp", dblp[row["ltable.id"]])
            b = record_item("acm", acm[row["rtable.id"]])
            label = row["gold"] == "1"
            pairs.append(Pair("dblp_acm", a, b, label, "match" if label else "non-match"))
    return pairs


def _records(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def record_item(source: str, rec: Mapping[str, str]) -> Item:
    """A bibliographic record (DBLP's or ACM's: id, title, authors, year, venue) as a
    collector would make a paper of it: no abstract, so no text. The tests' real-world tier
    builds its pairs with this too."""
    ident = rec["id"]
    url = (
        f"https://dblp.org/rec/{ident}"
        if source == "dblp"
        else f"https://dl.acm.org/citation.cfm?id={ident}"
    )
    year = int(float(rec["year"])) if rec.get("year") else None
    authors = tuple(a.strip() for a in html.unescape(rec.get("authors") or "").split(","))
    return Item(
        id=f"{source}:{ident}",
        source=source,
        source_kind="bibliography",
        kind=ItemKind.PAPER,
        url=url,
        title=one_line(html.unescape(rec["title"])),
        text="",
        authors=tuple(a for a in authors if a),
        published=datetime(year, 1, 1, tzinfo=UTC) if year else None,
        extra={"venue": rec.get("venue", "")},
    )


@dataclass
class FeedPools:
    """The recorded feeds as items: positives found across formats, pools for negatives."""

    positives: list[Pair] = field(default_factory=list)
    #: Feed (or all arXiv responses) -> its distinct items, for within-feed negatives.
    pools: dict[str, list[Item]] = field(default_factory=dict)


def recorded_feed_pools(fixtures: Path, exclude: Iterable[Pair]) -> FeedPools:
    blogs = fixtures / "feeds" / "blogs"
    out = FeedPools()
    by_file = {p.name: feed_items(p) for p in blog_feed_files(blogs)}
    taken = {(p.a.source, p.a.id, p.b.source, p.b.id) for p in exclude}
    for a_name, b_name in BLOG_PAIRS:
        b_by = defaultdict(list)
        for item in by_file[b_name]:
            b_by[(item.title.lower(), item.published)].append(item)
        for a in by_file[a_name]:
            match = b_by.get((a.title.lower(), a.published), [])
            if len(match) == 1 and (a.source, a.id, match[0].source, match[0].id) not in taken:
                site = a_name.removeprefix("rsparser_").split(".")[0]
                out.positives.append(Pair("recorded_feeds", a, match[0], True, f"{site} atom/json"))
    duplicated = {b_name for _, b_name in BLOG_PAIRS}  # the same posts as the Atom files
    for name, items in by_file.items():
        if name not in duplicated:
            out.pools[name] = items
    papers: dict[str, list[Item]] = defaultdict(list)
    for path in sorted((fixtures / "feeds" / "arxiv").glob("*.xml")):
        for item in arxiv_items(path):
            papers[item.id].append(item)
    for seen in papers.values():
        if len(seen) >= 2:
            out.positives.append(
                Pair("recorded_feeds", seen[0], seen[1], True, "arxiv 2 responses")
            )
    out.pools["arxiv"] = [seen[0] for seen in papers.values()]
    return out


def hard_negatives(pools: FeedPools, vectors: dict[str, Vectors]) -> list[Pair]:
    """Each item with its nearest other entry of the same feed, under three measures."""
    pairs: dict[tuple[str, str, str], Pair] = {}
    for name, items in pools.pools.items():
        if len(items) < 2:
            continue
        measures = [tfidf_matrix([first_chunk(i, PIPELINE_VARIANT) for i in items])]
        for variant in VARIANTS:
            measures.append(np.stack([vectors[variant].of(i) for i in items]))
        for matrix in measures:
            sims = matrix @ matrix.T
            np.fill_diagonal(sims, -np.inf)
            for i, j in enumerate(np.argmax(sims, axis=1)):
                a, b = sorted((items[i], items[int(j)]), key=lambda x: x.id)
                if a.id == b.id or (a.title, a.text) == (b.title, b.text):
                    continue  # one post listed twice is not a negative
                origin = "arxiv different papers" if name == "arxiv" else "blog different posts"
                pairs.setdefault((name, a.id, b.id), Pair("recorded_feeds", a, b, False, origin))
    return list(pairs.values())


def tfidf_matrix(texts: Sequence[str]) -> np.ndarray:
    """Rows of L2-normalised TF-IDF weights over word tokens (a model-free similarity)."""
    docs = [Counter(re.findall(r"\w+", t.lower())) for t in texts]
    vocab = {w: k for k, w in enumerate(sorted({w for d in docs for w in d}))}
    df = Counter(w for d in docs for w in d)
    matrix = np.zeros((len(docs), len(vocab)), dtype=np.float32)
    for row, doc in enumerate(docs):
        for word, count in doc.items():
            matrix[row, vocab[word]] = (1 + math.log(count)) * math.log(len(docs) / df[word])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.clip(norms, 1e-12, None)


# --- embedding -----------------------------------------------------------------------------


def first_chunk(item: Item, variant: str) -> str:
    """What is embedded for near-duplicate matching: the pipeline's first chunk, or the title."""
    text = item.text if variant == "title+text" else ""
    chunks = chunk_text(item.title, text)
    return chunks[0].text if chunks else ""


@dataclass
class Vectors:
    variant: str
    by_text: dict[str, np.ndarray]

    def of(self, item: Item) -> np.ndarray:
        return self.by_text[first_chunk(item, self.variant)]


def embed_all(items: Iterable[Item], embedder: LocalMiniLM) -> dict[str, Vectors]:
    items = list(items)
    texts = sorted({first_chunk(i, v) for i in items for v in VARIANTS})
    matrix = embedder.embed(texts)
    by_text = dict(zip(texts, matrix, strict=True))
    return {v: Vectors(v, by_text) for v in VARIANTS}


# --- the merge decision ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    pair: Pair
    similarity: float
    #: How assign() places b at each threshold: "key", "update", "similar" or "new".
    reasons: tuple[str, ...]


def score(pair: Pair, vectors: Vectors) -> Scored:
    """assign() for item b when item a's story is the only recent one, at every threshold."""
    keys_a, keys_b = item_keys(pair.a), item_keys(pair.b)
    index = {k: ("a", NOW) for k in keys_a.strong | keys_a.weak}
    va, vb = vectors.of(pair.a), vectors.of(pair.b)
    candidates = [Candidate("a", va, NOW)]
    reasons = tuple(
        assign(keys_b, vb, index, candidates, NOW, WINDOW, threshold=t).reason
        for t in (*THRESHOLDS, DEFAULT_THRESHOLD)
    )
    return Scored(pair, float(va @ vb), reasons)


# --- metrics -----------------------------------------------------------------------------


def figures(scored: Sequence[Scored], column: int, threshold: float) -> dict[str, Any]:
    tp = fp = fn = tn = 0
    tp_by: Counter[str] = Counter()
    fp_by: Counter[str] = Counter()
    for s in scored:
        reason = s.reasons[column]
        merged = reason != "new"
        if s.pair.label and merged:
            tp += 1
            tp_by[reason] += 1
        elif merged:
            fp += 1
            fp_by[reason] += 1
        elif s.pair.label:
            fn += 1
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return {
        "threshold": threshold,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": f_beta(precision, recall, 1.0),
        "f05": f_beta(precision, recall, BETA),
        "tp_by_key": tp_by["key"] + tp_by["update"],
        "tp_by_similarity": tp_by["similar"],
        "fp_by_key": fp_by["key"] + fp_by["update"],
        "fp_by_similarity": fp_by["similar"],
    }


def f_beta(precision: float | None, recall: float | None, beta: float) -> float:
    if not precision or not recall:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def sweep(scored: Sequence[Scored]) -> list[dict[str, Any]]:
    return [figures(scored, k, t) for k, t in enumerate(THRESHOLDS)]


def at_default(scored: Sequence[Scored]) -> dict[str, Any]:
    return figures(scored, len(THRESHOLDS), DEFAULT_THRESHOLD)


def best(rows: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """The row maximising ``metric``; ties go to the higher threshold (precision first)."""
    return max(rows, key=lambda r: (round(r[metric], 9), r["threshold"]))


def halves(scored: Sequence[Scored], seed: int) -> tuple[list[Scored], list[Scored]]:
    """Two halves of the pairs, stratified by dataset and label, drawn with a fixed seed."""
    rng = random.Random(seed)
    groups: dict[tuple[str, bool], list[Scored]] = defaultdict(list)
    for s in scored:
        groups[(s.pair.dataset, s.pair.label)].append(s)
    first: list[Scored] = []
    second: list[Scored] = []
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        first.extend(group[0::2])
        second.extend(group[1::2])
    return first, second


def held_out(first: Sequence[Scored], second: Sequence[Scored]) -> dict[str, Any]:
    """Choose on one half, report on the other, both ways, for F1 and F0.5."""
    out: dict[str, Any] = {}
    for metric in ("f1", "f05"):
        runs = []
        for name, choose_on, report_on in (("A->B", first, second), ("B->A", second, first)):
            chosen = best(sweep(choose_on), metric)
            rows = sweep(report_on)
            at_chosen = rows[THRESHOLDS.index(chosen["threshold"])]
            oracle = best(rows, metric)
            runs.append(
                {
                    "direction": name,
                    "chosen_threshold": chosen["threshold"],
                    "chosen_score_on_choice_half": chosen[metric],
                    "held_out": at_chosen,
                    "held_out_best_threshold": oracle["threshold"],
                    "held_out_best_score": oracle[metric],
                }
            )
        out[metric] = runs
    return out


def by_dataset(scored: Sequence[Scored]) -> dict[str, list[Scored]]:
    groups: dict[str, list[Scored]] = {d: [] for d in DATASETS}
    for s in scored:
        groups[s.pair.dataset].append(s)
    groups[OVERALL] = list(scored)
    return groups


def evaluate(scored: Sequence[Scored], seed: int) -> dict[str, Any]:
    groups = by_dataset(scored)
    first, second = halves(scored, seed)
    firsts, seconds = by_dataset(first), by_dataset(second)
    out: dict[str, Any] = {}
    for name, group in groups.items():
        rows = sweep(group)
        out[name] = {
            "sweep": rows,
            "default": at_default(group),
            "best_f1": best(rows, "f1"),
            "best_f05": best(rows, "f05"),
            "held_out": held_out(firsts[name], seconds[name]),
        }
    return out


def key_false_merges(scored: Sequence[Scored]) -> list[dict[str, Any]]:
    """Different stories that exact keys merge, whatever the threshold."""
    out = []
    for s in scored:
        if not s.pair.label and s.reasons[-1] in ("key", "update"):
            shared = item_keys(s.pair.a).strong & item_keys(s.pair.b).strong
            out.append(
                {
                    "dataset": s.pair.dataset,
                    "source": s.pair.a.source,
                    "keys": sorted(shared),
                    "a": s.pair.a.title[:70],
                    "b": s.pair.b.title[:70],
                }
            )
    return out


def hardest(scored: Sequence[Scored], label: bool, n: int) -> list[dict[str, Any]]:
    """The negatives most similar (label False) or positives least similar (label True)."""
    pool = sorted(
        (s for s in scored if s.pair.label is label and s.reasons[-1] in ("similar", "new")),
        key=lambda s: s.similarity,
        reverse=not label,
    )
    return [
        {
            "dataset": s.pair.dataset,
            "similarity": round(s.similarity, 3),
            "a": s.pair.a.title[:70],
            "b": s.pair.b.title[:70],
        }
        for s in pool[:n]
    ]


# --- report ----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.3f}"


def print_report(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    out("Story merging (dedupe) on labelled pairs")
    out(
        f"decision: tracker.understand.stories.assign (exact keys, then cosine of first-chunk "
        f"embeddings, {result['embedder']}); DEFAULT_THRESHOLD = {DEFAULT_THRESHOLD}"
    )
    out("")
    out("datasets:")
    for name, info in result["datasets"].items():
        origins = ", ".join(f"{k} {v}" for k, v in info["origins"].items())
        out(
            f"  {name:15} {info['pairs']:4} pairs ({info['positives']} same story, "
            f"{info['negatives']} different): {origins}"
        )
    for variant in VARIANTS:
        res = result["variants"][variant]
        label = "the pipeline" if variant == PIPELINE_VARIANT else "for comparison"
        out("")
        out(f"=== embedding {variant!r} ({label}) ===")
        for name in (*DATASETS, OVERALL):
            data = res[name]
            out("")
            out(f"{name}:")
            out("  thr    P      R      F1     F0.5   TP  FP  FN   TN  TP key/sim  FP key/sim")
            for row in data["sweep"]:
                marks = ""
                if row["threshold"] == data["best_f1"]["threshold"]:
                    marks += " <-F1"
                if row["threshold"] == data["best_f05"]["threshold"]:
                    marks += " <-F0.5"
                if math.isclose(row["threshold"], DEFAULT_THRESHOLD):
                    marks += " (default)"
                out(
                    f"  {row['threshold']:.2f} {_pct(row['precision'])}  {_pct(row['recall'])}  "
                    f"{row['f1']:5.3f}  {row['f05']:5.3f} {row['tp']:4}{row['fp']:4}{row['fn']:4}"
                    f"{row['tn']:5}  {row['tp_by_key']:4}/{row['tp_by_similarity']:<4}"
                    f"  {row['fp_by_key']:4}/{row['fp_by_similarity']:<4}{marks}"
                )
            for metric, title in (("f1", "F1"), ("f05", "F0.5")):
                parts = []
                for run in data["held_out"][metric]:
                    h = run["held_out"]
                    parts.append(
                        f"{run['direction']}: chose {run['chosen_threshold']:.2f} -> "
                        f"{title} {h[metric]:.3f} (P {_pct(h['precision'])}, "
                        f"R {_pct(h['recall'])}) vs best {run['held_out_best_threshold']:.2f} "
                        f"-> {run['held_out_best_score']:.3f}"
                    )
                out(f"  held out, {title:4}: " + "; ".join(parts))
    rec = result["recommendation"]
    out("")
    out(
        f"RECOMMENDED DEFAULT_THRESHOLD = {rec['threshold']:.2f} "
        f"({rec['rule']}; now {DEFAULT_THRESHOLD})"
    )
    for name in (*DATASETS, OVERALL):
        r = rec["figures"][name]
        out(
            f"  {name:15} P {_pct(r['precision'])}  R {_pct(r['recall'])}  F1 {r['f1']:.3f}  "
            f"F0.5 {r['f05']:.3f}  (positives by key {r['tp_by_key']}, by similarity "
            f"{r['tp_by_similarity']}; false merges {r['fp']})"
        )
    out("")
    out("most similar different-story pairs (title+text), not merged by key:")
    for h in result["hardest_negatives"]:
        out(f"  {h['similarity']:.3f} [{h['dataset']}] {h['a']!r} | {h['b']!r}")
    out("different-story pairs merged by exact keys (at every threshold):")
    for h in result["key_false_merges"]:
        out(f"  {', '.join(h['keys'])} [{h['source']}] {h['a']!r} | {h['b']!r}")
    out("least similar same-story pairs (title+text), not merged by key:")
    for h in result["hardest_positives"]:
        out(f"  {h['similarity']:.3f} [{h['dataset']}] {h['a']!r} | {h['b']!r}")
    out("")
    out(f"{result['seconds']:.1f} s ({result['texts_embedded']} distinct texts embedded)")


def run(fixtures: Path, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    cross = cross_format_pairs(fixtures)
    dblp = dblp_acm_pairs(fixtures)
    feeds = recorded_feed_pools(fixtures, cross)
    items = [i for p in (*cross, *dblp, *feeds.positives) for i in (p.a, p.b)]
    items += [i for pool in feeds.pools.values() for i in pool]
    embedder = LocalMiniLM()
    vectors = embed_all(items, embedder)
    pairs = [*cross, *dblp, *feeds.positives, *hard_negatives(feeds, vectors)]
    result: dict[str, Any] = {
        "embedder": embedder.name,
        "thresholds": list(THRESHOLDS),
        "default_threshold": DEFAULT_THRESHOLD,
        "seed": seed,
        "datasets": {},
        "variants": {},
    }
    for name in DATASETS:
        mine = [p for p in pairs if p.dataset == name]
        result["datasets"][name] = {
            "pairs": len(mine),
            "positives": sum(p.label for p in mine),
            "negatives": sum(not p.label for p in mine),
            "origins": dict(Counter(p.origin for p in mine)),
        }
    scored_by: dict[str, list[Scored]] = {}
    for variant in VARIANTS:
        scored_by[variant] = [score(p, vectors[variant]) for p in pairs]
        result["variants"][variant] = evaluate(scored_by[variant], seed)
    pipeline = result["variants"][PIPELINE_VARIANT]
    chosen = pipeline[OVERALL]["best_f05"]["threshold"]
    column = THRESHOLDS.index(chosen)
    result["recommendation"] = {
        "threshold": chosen,
        "variant": PIPELINE_VARIANT,
        "rule": "max F0.5 over all pooled pairs, ties to the higher threshold",
        "figures": {name: pipeline[name]["sweep"][column] for name in (*DATASETS, OVERALL)},
    }
    scored = scored_by[PIPELINE_VARIANT]
    result["hardest_negatives"] = hardest(scored, False, 12)
    result["hardest_positives"] = hardest(scored, True, 8)
    result["key_false_merges"] = key_false_merges(scored)
    result["texts_embedded"] = len(vectors[PIPELINE_VARIANT].by_text)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--seed", type=int, default=7, help="seed of the two-halves split")
    args = parser.parse_args(argv)
    if not (args.fixtures / "dedupe").is_dir():
        print(f"fixtures not found at {args.fixtures}", file=sys.stderr)
        return 2
    result = run(args.fixtures, args.seed)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
