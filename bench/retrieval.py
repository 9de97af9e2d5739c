"""Benchmark ``tracker ask``'s retrieval (``tracker.answer.ask.retrieve``) on a BEIR-layout dataset.

Quality tier (the default): every document of ``corpus.jsonl`` becomes an ``Item`` (kind
paper, source "bench", id = the document id, a unique URL, its title and text) stored with
``SQLiteStateStore.save_success``; ``Tracker.process()`` then chunks, embeds (the real
``LocalMiniLM``), places items in stories and writes the chunks to Chroma and SQLite,
exactly as after ``tracker collect``. Each query of ``queries.jsonl`` is then run through
``retrieve`` three ways, by BM25, by embedding and by both fused (the hybrid ``tracker ask``
uses). Passages map back to documents through their chunk id (``bench/<doc id>#<n>``);
documents are ranked by their best passage, and scored against ``qrels.tsv`` (graded):

* nDCG@10, gains = the judged relevance, log2 discount (the ideal ranking from all judged
  documents of the query); recall@100 and recall@5 (documents judged 1 or more);
* documents are the unit, so ``retrieve`` runs with ``per_story=1`` (one passage per story,
  every document its own story) and a ``depth`` (passages asked of each method) of 300 by
  default, enough for 100 distinct documents when abstracts make 1-2 chunks each;
* "ask recall@5": the share of relevant documents among the papers of the first 5 passages
  that ``retrieve`` gives with ``tracker ask``'s own settings (``per_story=2``, ``depth=50``);
  with one relevant paper per question (qasper) it is the share of questions whose paper
  supplies at least one of the 5 passages.

A query with a ``query_paper_id`` (CSFCube's query-by-example) never counts its own paper:
it is dropped from the ranking and from the judgments. Queries without a positive judgment
are left out. Also reported: a sweep of the hybrid's fusion (RRF k, depth, fusing per story
instead of per passage), simulated with ``tracker.answer.ask.fuse`` and ``cap_per_story`` on the
methods' own rankings; the simulation of the current settings is checked against
``retrieve``'s output.

Latency tier (``--latency``, instead of the quality tier): p50/p95 of the hybrid
``retrieve`` with ``tracker ask``'s settings (n=8, per_story=2, depth=50; no LLM; the query
embedding included) at 1k, 10k and 100k chunks, with peak RSS. Embedding 100k chunks with
the real model would take about an hour, so this tier uses SYNTHETIC chunks: random unit
vectors written through ``ChromaVectorStore.replace_items`` (a fake embedder for the
collection) and real chunk texts (CSFCube abstracts, cycled) through
``ChunkStore.replace``. Questions are qasper's (short, like ``tracker ask``'s).

Usage::

    .venv/bin/python bench/retrieval.py [--dataset DIR] [--json] [--limit-queries N]
        [--max-docs N] [--depth N] [--latency] [--sizes 1000,10000,100000]

Nothing here touches the network. Exits 2 if the dataset cannot be found.
"""

# ruff: noqa: E402  (tracker is imported after putting the project root on sys.path)

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, even when it is not installed in this Python

import numpy as np

from storage.state import SQLiteStateStore
from storage.vectors import ChromaVectorStore, ChunkRecord
from tracker.answer.ask import RRF_K, Filters, Passage, cap_per_story, fuse, retrieve
from tracker.app import Tracker
from tracker.models import Item, ItemKind, Validators
from tracker.settings import Settings
from tracker.understand.chunking import chunk_text
from tracker.understand.embedding_function import TrackerEmbeddingFunction

EVAL = ROOT.parent / "shared" / "fixtures" / "eval"
DEFAULT_DATASET = EVAL / "csfcube"
SOURCE = "bench"
METHODS: dict[str, tuple[str, ...]] = {
    "bm25": ("bm25",),
    "dense": ("dense",),
    "hybrid": ("bm25", "dense"),
}
#: ``tracker ask``'s retrieval settings (``Tracker.ask`` and ``retrieve``'s defaults).
ASK_N, ASK_PER_STORY, ASK_DEPTH = 8, 2, 50
SWEEP_K = (1, 5, 10, 20, 30, 60, 100)
SWEEP_DEPTH = (50, 100, 300)


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def rss_mb() -> float | None:
    """The resident set now (Linux only)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return None


# --- the dataset ---------------------------------------------------------------------------


@dataclass
class Dataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # id -> (title, text), in file order
    queries: dict[str, dict[str, Any]]  # id -> the query's record, in file order
    qrels: dict[str, dict[str, int]]  # query id -> document id -> judged relevance

    def judgments(self, query_id: str) -> dict[str, int]:
        """The query's judgments, without its own paper (query by example)."""
        own = self.queries[query_id].get("query_paper_id")
        return {d: r for d, r in self.qrels.get(query_id, {}).items() if d != own}


def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def load_dataset(path: Path) -> Dataset:
    corpus = {
        str(d["_id"]): (str(d.get("title") or "").strip(), str(d.get("text") or "").strip())
        for d in _jsonl(path / "corpus.jsonl")
    }
    queries = {str(q["_id"]): q for q in _jsonl(path / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with (path / "qrels.tsv").open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows, None)  # the header line
        for row in rows:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return Dataset(path.name, corpus, queries, qrels)


def evaluated_queries(ds: Dataset, limit: int | None) -> list[str]:
    """Queries with at least one positive judgment in the corpus, in file order."""
    out = [
        q for q in ds.queries if any(r > 0 and d in ds.corpus for d, r in ds.judgments(q).items())
    ]
    return out[:limit] if limit else out


def pick_docs(ds: Dataset, queries: Sequence[str], max_docs: int | None, seed: int) -> list[str]:
    """Every document, or (with ``max_docs``) those judged relevant to the evaluated
    queries and their query papers, plus a fixed-seed sample of the rest."""
    if not max_docs or max_docs >= len(ds.corpus):
        return list(ds.corpus)
    keep = {d for q in queries for d, r in ds.judgments(q).items() if r > 0 and d in ds.corpus}
    keep |= {str(ds.queries[q].get("query_paper_id")) for q in queries} & ds.corpus.keys()
    rest = sorted(ds.corpus.keys() - keep)
    random.Random(seed).shuffle(rest)
    keep |= set(rest[: max(0, max_docs - len(keep))])
    return [d for d in ds.corpus if d in keep]


# --- metrics -------------------------------------------------------------------------------


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {d for d, r in judged.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def doc_of(passage: Passage) -> str:
    """The corpus document of a passage: chunk ids are ``bench/<doc id>#<n>``."""
    return passage.chunk_id.removeprefix(f"{SOURCE}/").rsplit("#", 1)[0]


def ranked_docs(passages: Iterable[Passage], exclude: str | None = None) -> list[str]:
    """Documents in the order of their best passage, each once."""
    seen: dict[str, None] = {}
    for passage in passages:
        doc = doc_of(passage)
        if doc != exclude:
            seen.setdefault(doc, None)
    return list(seen)


class CachedEmbedder:
    """The tracker's embedder, remembering query vectors (each query is embedded once)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.name = inner.name
        self.dimensions = inner.dimensions
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.stack([self._cache[t] for t in texts])


# --- quality tier --------------------------------------------------------------------------


def index_corpus(
    ds: Dataset,
    docs: Sequence[str],
    settings: Settings,
    state: SQLiteStateStore,
    kinds: Mapping[str, ItemKind] | None = None,
    bylines: Mapping[str, tuple[tuple[str, ...], Mapping[str, str]]] | None = None,
) -> tuple[Tracker, dict[str, Any]]:
    """The documents as new items (papers unless ``kinds`` says otherwise; with the
    authors and extra of ``bylines``), through ``save_success`` and ``Tracker.process``."""
    now = datetime.now(UTC)
    items = [
        Item(
            id=doc,
            source=SOURCE,
            source_kind=SOURCE,
            kind=(kinds or {}).get(doc, ItemKind.PAPER),
            url=f"https://bench.invalid/{quote(ds.name)}/{quote(doc, safe='')}",
            title=ds.corpus[doc][0],
            text=ds.corpus[doc][1],
            published=now,
            authors=(bylines or {}).get(doc, ((), {}))[0],
            extra=dict((bylines or {}).get(doc, ((), {}))[1]),
        )
        for doc in docs
    ]
    started = time.perf_counter()
    state.save_success(SOURCE, SOURCE, items, Validators(), "ok", now)
    tracker = Tracker(settings, state)
    report = tracker.process()
    process_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    lexical = tracker.lexical()
    bm25_seconds = time.perf_counter() - t0
    stories = {str(r["story_id"]) for r in lexical.rows}
    return tracker, {
        "docs": len(docs),
        "chunks": len(lexical.rows),
        "stories": len(stories),
        "new_stories": report.new_stories,
        "joined_as_similar": report.joined_as_similar,
        "joined_by_key": report.joined_by_key,
        "process_seconds": process_seconds,
        "bm25_build_seconds": bm25_seconds,
        "index_seconds": process_seconds + bm25_seconds,
    }


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _simulated_hybrid(
    bm25: Sequence[Passage],
    dense: Sequence[Passage],
    k: int,
    depth: int,
    n: int,
    per_story: int,
    by_story: bool = False,
) -> list[Passage]:
    """``retrieve``'s hybrid from the methods' own rankings, with another k or depth.

    ``by_story``: fuse the methods' story rankings (each story at its best passage's rank)
    instead of their passage rankings, and show each story's best passage.
    """
    lists = {"bm25": list(bm25[:depth]), "dense": list(dense[:depth])}
    by_id = {p.chunk_id: p for ps in lists.values() for p in ps}
    if by_story:
        best: dict[str, Passage] = {}
        rankings: dict[str, list[str]] = {}
        for method, ps in lists.items():
            ranking: list[str] = []
            for p in ps:
                best.setdefault(p.story_id, p)  # the best bm25 passage, else dense
                if p.story_id not in ranking:
                    ranking.append(p.story_id)
            rankings[method] = ranking
        fused = [best[s] for s, _ in fuse(rankings, k)]
    else:
        fused = [
            by_id[c] for c, _ in fuse({m: [p.chunk_id for p in ps] for m, ps in lists.items()}, k)
        ]
    return cap_per_story(fused, per_story, n)


def measure_quality(
    ds: Dataset,
    queries: Sequence[str],
    docs: Sequence[str],
    depth: int,
    sweep: bool = True,
) -> dict[str, Any]:
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = Settings(home=home, sources_path=home / "sources.yaml")
        state = stack.enter_context(SQLiteStateStore(settings.state_db))
        tracker, index = index_corpus(ds, docs, settings, state)
        lexical = tracker.lexical()
        vectors = tracker.vectors
        embedder = CachedEmbedder(tracker.embedder)
        in_corpus = set(docs)

        def run(question: str, methods: Sequence[str], **kw: Any) -> list[Passage]:
            return retrieve(question, Filters(), lexical, vectors, embedder, methods=methods, **kw)

        per_method: dict[str, dict[str, list[float]]] = {
            m: {"ndcg@10": [], "recall@100": [], "recall@5": [], "ask_recall@5": [], "docs": []}
            for m in METHODS
        }
        sweep_scores: dict[str, list[float]] = {}
        mismatches = 0
        started = time.perf_counter()
        for qid in queries:
            question = str(ds.queries[qid]["text"])
            own = ds.queries[qid].get("query_paper_id")
            judged = {d: r for d, r in ds.judgments(qid).items() if d in in_corpus}
            for name, methods in METHODS.items():
                # n=101: 100 documents remain after dropping the query's own paper
                passages = run(question, methods, n=101, per_story=1, depth=depth)
                ranked = ranked_docs(passages, own)[:100]
                scores = per_method[name]
                scores["ndcg@10"].append(ndcg_at(ranked, judged, 10))
                scores["recall@100"].append(recall_at(ranked, judged, 100))
                scores["recall@5"].append(recall_at(ranked, judged, 5))
                scores["docs"].append(len(ranked))
                ask = run(question, methods, n=ASK_N, per_story=ASK_PER_STORY, depth=ASK_DEPTH)
                ask_docs = ranked_docs([p for p in ask if doc_of(p) != own][:5], own)
                scores["ask_recall@5"].append(recall_at(ask_docs, judged, 5))
            if not sweep:
                continue
            # The methods' whole rankings once, then the hybrid with other settings.
            top = max(depth, *SWEEP_DEPTH)
            full = {
                m: run(question, (m,), n=top, per_story=top, depth=top) for m in ("bm25", "dense")
            }
            real = run(question, METHODS["hybrid"], n=101, per_story=1, depth=depth)
            simulated = _simulated_hybrid(full["bm25"], full["dense"], RRF_K, depth, 101, 1)
            if [p.chunk_id for p in real] != [p.chunk_id for p in simulated]:
                mismatches += 1

            def score(
                label: str, passages: Sequence[Passage], judged: dict = judged, own: Any = own
            ) -> None:
                ranked = ranked_docs(passages, own)
                sweep_scores.setdefault(label, []).append(ndcg_at(ranked, judged, 10))

            for k in SWEEP_K:
                for d in SWEEP_DEPTH:
                    score(
                        f"k={k} depth={d}",
                        _simulated_hybrid(full["bm25"], full["dense"], k, d, 101, 1),
                    )
                    score(
                        f"k={k} depth={d} by story",
                        _simulated_hybrid(full["bm25"], full["dense"], k, d, 101, 1, True),
                    )
            for d in SWEEP_DEPTH:  # the real retrieve, at other depths (k as shipped)
                real = run(question, METHODS["hybrid"], n=101, per_story=1, depth=d)
                score(f"retrieve depth={d}", real)
        query_seconds = time.perf_counter() - started

    figures: dict[str, Any] = {
        name: {
            "ndcg@10": _mean(s["ndcg@10"]),
            "recall@100": _mean(s["recall@100"]),
            "recall@5": _mean(s["recall@5"]),
            "ask_recall@5": _mean(s["ask_recall@5"]),
            "docs_ranked_min": min(s["docs"], default=0),
        }
        for name, s in per_method.items()
    }
    return {
        **figures,
        "dataset": ds.name,
        "docs": len(docs),
        "corpus_docs": len(ds.corpus),
        "subsampled": len(docs) < len(ds.corpus),
        "queries": len(queries),
        "index_seconds": index["index_seconds"],
        "index": index,
        "depth": depth,
        "per_story": 1,
        "rrf_k": RRF_K,
        "query_seconds": query_seconds,
        "hybrid_beats_both_ndcg@10": figures["hybrid"]["ndcg@10"]
        > max(figures["bm25"]["ndcg@10"], figures["dense"]["ndcg@10"]),
        "sweep_ndcg@10": {label: _mean(v) for label, v in sweep_scores.items()},
        "sweep_simulation_mismatches": mismatches if sweep else None,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- latency tier --------------------------------------------------------------------------


class RandomEmbedder:
    """Random unit vectors under the real model's name: the synthetic collection's embedder."""

    def __init__(self, name: str, dimensions: int, seed: int = 0):
        self.name = name
        self.dimensions = dimensions
        self._rng = np.random.default_rng(seed)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = self._rng.standard_normal((len(texts), self.dimensions)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _synthetic_records(
    texts: Sequence[str], start: int, stop: int, fake: RandomEmbedder, published_ts: int
) -> dict[str, list[ChunkRecord]]:
    """Chunks ``start`` to ``stop`` (two per item), with random vectors."""
    vectors = fake.embed([""] * (stop - start))
    records: dict[str, list[ChunkRecord]] = {}
    for n in range(start, stop):
        item, index = divmod(n, 2)
        key = f"synthetic/{item}"
        records.setdefault(key, []).append(
            ChunkRecord(
                id=f"{key}#{index}",
                text=texts[n % len(texts)],
                vector=vectors[n - start],
                metadata={
                    "item_id": str(item),
                    "story_id": f"story-{item}",
                    "kind": "paper",
                    "source": "synthetic",
                    "url": f"https://bench.invalid/synthetic/{item}",
                    "title": f"synthetic paper {item}",
                    "chunk": index,
                    "hash": f"{n:064x}",
                    "published_ts": published_ts,
                },
            )
        )
    return records


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]  # nearest rank


def latency_questions(n: int) -> tuple[list[str], str]:
    for path, label in ((EVAL / "qasper", "qasper questions"), (DEFAULT_DATASET, "csfcube")):
        if (path / "queries.jsonl").is_file():
            found = [str(q["text"]) for q in _jsonl(path / "queries.jsonl")]
            if found:
                return [found[i % len(found)] for i in range(n)], label
    return [f"question {i} about retrieval" for i in range(n)], "made-up questions"


def chunk_texts() -> list[str]:
    texts = []
    corpus = DEFAULT_DATASET / "corpus.jsonl"
    if corpus.is_file():
        for doc in _jsonl(corpus):
            texts.extend(c.text for c in chunk_text(str(doc.get("title", "")), doc["text"]))
    return texts or [f"synthetic chunk number {i} about language models" for i in range(1000)]


def measure_latency(
    sizes: Sequence[int], n_queries: int = 100, on_tier: Callable[[dict], None] | None = None
) -> dict[str, Any]:
    questions, question_source = latency_questions(n_queries)
    texts = chunk_texts()
    tiers = []
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = Settings(home=home, sources_path=home / "sources.yaml")
        state = stack.enter_context(SQLiteStateStore(settings.state_db))
        tracker = Tracker(settings, state)
        embedder = tracker.embedder  # the real model: questions are embedded as in ask
        embedder.embed(["warm up"])
        fake = RandomEmbedder(embedder.name, embedder.dimensions)
        store = ChromaVectorStore(
            embedder.name,
            embedder.dimensions,
            TrackerEmbeddingFunction(fake),  # type: ignore[arg-type]
            path=settings.chroma_path,
        )
        tracker.__dict__["vectors"] = store
        published_ts = int(datetime.now(UTC).timestamp())
        have = 0
        for size in sorted(sizes):
            started = time.perf_counter()
            for start in range(have, size, 10_000):
                stop = min(size, start + 10_000)
                records = _synthetic_records(texts, start, stop, fake, published_ts)
                store.replace_items(records)
                tracker.chunks.replace(records)
            insert_seconds = time.perf_counter() - started
            have = size
            started = time.perf_counter()
            tracker.lexical()
            bm25_seconds = time.perf_counter() - started
            # The first question after a change pays for nothing else: warm up on it.
            retrieve(questions[0], Filters(), tracker.lexical(), store, embedder)
            totals, parts = [], {"embed": [], "bm25": [], "dense": []}
            for question in questions:
                t0 = time.perf_counter()
                passages = retrieve(
                    question,
                    Filters(),
                    tracker.lexical(),
                    tracker.vectors,
                    embedder,
                    n=ASK_N,
                    per_story=ASK_PER_STORY,
                    depth=ASK_DEPTH,
                )
                totals.append(time.perf_counter() - t0)
                if not passages:
                    raise SystemExit("retrieve found nothing in the synthetic corpus")
            deeper = []  # the same at depth 100, the setting the quality sweep favours
            for question in questions:
                t0 = time.perf_counter()
                retrieve(
                    question,
                    Filters(),
                    tracker.lexical(),
                    tracker.vectors,
                    embedder,
                    n=ASK_N,
                    per_story=ASK_PER_STORY,
                    depth=100,
                )
                deeper.append(time.perf_counter() - t0)
            for question in questions[: min(30, len(questions))]:  # where the time goes
                t0 = time.perf_counter()
                vector = embedder.embed([question])[0]
                t1 = time.perf_counter()
                tracker.lexical().search(question, ASK_DEPTH, Filters())
                t2 = time.perf_counter()
                store.query(vector, ASK_DEPTH, None)
                t3 = time.perf_counter()
                parts["embed"].append(t1 - t0)
                parts["bm25"].append(t2 - t1)
                parts["dense"].append(t3 - t2)
            tier = {
                "chunks": store.count(),
                "sqlite_chunks": len(tracker.lexical().rows),
                "p50_ms": statistics.median(totals) * 1000,
                "p95_ms": _percentile(totals, 0.95) * 1000,
                "depth100_p50_ms": statistics.median(deeper) * 1000,
                "depth100_p95_ms": _percentile(deeper, 0.95) * 1000,
                "parts_p50_ms": {k: statistics.median(v) * 1000 for k, v in parts.items()},
                "queries": len(totals),
                "insert_seconds": insert_seconds,
                "bm25_build_seconds": bm25_seconds,
                "rss_mb": rss_mb(),
                "peak_rss_mb": peak_rss_mb(),
            }
            tiers.append(tier)
            if on_tier:
                on_tier(tier)
    return {
        "synthetic_chunks": True,
        "questions": question_source,
        "settings": {"n": ASK_N, "per_story": ASK_PER_STORY, "depth": ASK_DEPTH, "rrf_k": RRF_K},
        "tiers": tiers,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- output --------------------------------------------------------------------------------


def print_quality(f: dict[str, Any]) -> None:
    idx = f["index"]
    sample = (
        f"{f['docs']:,} of {f['corpus_docs']:,} docs (all relevant to the evaluated queries "
        "and their query papers, plus a fixed-seed sample of the rest)"
        if f["subsampled"]
        else f"{f['docs']:,} docs (the whole corpus)"
    )
    print(f"{f['dataset']}: {sample}, {f['queries']} queries with positive judgments")
    print(
        f"  indexed through save_success + Tracker.process (real LocalMiniLM) in "
        f"{f['index_seconds']:.1f} s: {idx['chunks']:,} chunks, {idx['stories']:,} stories "
        f"({idx['joined_as_similar']} docs merged as near duplicates, "
        f"{idx['joined_by_key']} by key); BM25 built in {idx['bm25_build_seconds']:.1f} s"
    )
    print(
        f"  retrieve(n=100, per_story=1, depth={f['depth']}, RRF k={f['rrf_k']}); documents "
        "ranked by their best passage; a query's own paper is not counted"
    )
    print(f"  {'method':8s} {'nDCG@10':>8s} {'recall@100':>11s} {'recall@5':>9s} {'ask r@5':>8s}")
    for m in METHODS:
        s = f[m]
        print(
            f"  {m:8s} {s['ndcg@10']:8.4f} {s['recall@100']:11.4f} {s['recall@5']:9.4f} "
            f"{s['ask_recall@5']:8.4f}"
        )
    print(
        f"  (ask r@5: relevant documents among the first 5 passages with ask's settings, "
        f"per_story={ASK_PER_STORY}, depth={ASK_DEPTH})"
    )
    fewest = min(f[m]["docs_ranked_min"] for m in METHODS)
    print(f"  fewest documents ranked for a query: {fewest} (of 100 asked)")
    verdict = "yes" if f["hybrid_beats_both_ndcg@10"] else "no"
    print(f"  hybrid beats both single methods on nDCG@10: {verdict}")
    sweep = f.get("sweep_ndcg@10") or {}
    if sweep:
        print(
            f"  hybrid nDCG@10 with other fusion settings (simulated with tracker.answer.ask.fuse; "
            f"{f['sweep_simulation_mismatches']} queries where the simulation of the shipped "
            "settings differed from retrieve):"
        )
        for d in SWEEP_DEPTH:
            row = "  ".join(f"k={k}: {sweep[f'k={k} depth={d}']:.4f}" for k in SWEEP_K)
            print(f"    per passage, depth {d:3d}  {row}")
        for d in SWEEP_DEPTH:
            row = "  ".join(f"k={k}: {sweep[f'k={k} depth={d} by story']:.4f}" for k in SWEEP_K)
            print(f"    per story,   depth {d:3d}  {row}")
        row = "  ".join(f"depth {d}: {sweep[f'retrieve depth={d}']:.4f}" for d in SWEEP_DEPTH)
        print(f"    retrieve as shipped       {row}")
    print(f"  queries took {f['query_seconds']:.1f} s; peak RSS {f['peak_rss_mb']:.0f} MB")


def print_tier(t: dict[str, Any]) -> None:
    parts = ", ".join(f"{k} {v:.1f}" for k, v in t["parts_p50_ms"].items())
    print(
        f"  {t['chunks']:>7,} chunks  p50 {t['p50_ms']:7.1f} ms  p95 {t['p95_ms']:7.1f} ms  "
        f"(p50 of parts, ms: {parts}; at depth 100: p50 {t['depth100_p50_ms']:.1f} ms, "
        f"p95 {t['depth100_p95_ms']:.1f} ms); RSS {t['rss_mb'] or 0:.0f} MB, peak "
        f"{t['peak_rss_mb']:.0f} MB; insert {t['insert_seconds']:.0f} s, "
        f"BM25 build {t['bm25_build_seconds']:.1f} s",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="a BEIR folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--limit-queries", type=int, default=None, help="only the first N")
    parser.add_argument(
        "--max-docs", type=int, default=None, help="subsample the corpus (relevant docs kept)"
    )
    parser.add_argument("--seed", type=int, default=13, help="seed of the subsample")
    parser.add_argument("--depth", type=int, default=300, help="passages asked of each method")
    parser.add_argument("--no-sweep", action="store_true", help="skip the fusion sweep")
    parser.add_argument(
        "--latency", action="store_true", help="measure latency on synthetic chunks instead"
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="chunk counts (--latency)")
    parser.add_argument("--latency-queries", type=int, default=100, help="questions per size")
    args = parser.parse_args(argv)

    if args.latency:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        if not args.json:
            print(
                "Latency of the hybrid retrieve (tracker ask's settings: "
                f"n={ASK_N}, per_story={ASK_PER_STORY}, depth={ASK_DEPTH}, no LLM, question "
                "embedding included) on SYNTHETIC chunks: random vectors in Chroma, real "
                "CSFCube chunk texts cycled in SQLite/BM25",
                flush=True,
            )
        figures = measure_latency(sizes, args.latency_queries, None if args.json else print_tier)
        if args.json:
            print(json.dumps(figures))
        else:
            print(f"  questions: {figures['questions']}; peak RSS {figures['peak_rss_mb']:.0f} MB")
        return 0

    if not all((args.dataset / f).is_file() for f in ("corpus.jsonl", "queries.jsonl")):
        print(f"cannot find a BEIR dataset in {args.dataset}", file=sys.stderr)
        return 2
    ds = load_dataset(args.dataset)
    queries = evaluated_queries(ds, args.limit_queries)
    if not queries:
        print(f"{args.dataset} has no query with a positive judgment", file=sys.stderr)
        return 2
    docs = pick_docs(ds, queries, args.max_docs, args.seed)
    figures = measure_quality(ds, queries, docs, max(args.depth, 100), not args.no_sweep)
    if args.json:
        print(json.dumps(figures))
    else:
        print_quality(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
