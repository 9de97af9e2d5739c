"""Benchmark the local embedding model (``tracker.understand.embed.LocalMiniLM``) on real text.

Texts are the titles and abstracts of ``../shared/fixtures/eval/csfcube/corpus.jsonl``
(4,205 computer-science papers; cycled when more are asked for), each embedded as
"title\\n\\nabstract", which is about what the pipeline embeds for a paper.

Reports, for the raw model (``measure_raw``):

* model load time (locate and sha256-check the files, build the onnxruntime session);
* throughput of one ``embed()`` call over all N texts (texts/s and word pieces/s);
* latency of ``embed()`` on ``batch_size`` texts (p50 and p90 over up to 10 consecutive
  calls, in corpus order), what a caller embedding a handful of new items waits;
* peak RSS of the process.

``--threads-experiment`` also times, on 200 texts, the ways of using the cores that the
model code rejected (``measure_threading``).

Usage::

    .venv/bin/python bench/embed.py [--texts 1000] [--batch-size 32] [--batch-tokens 512]
        [--threads N] [--json] [--threads-experiment]

A later "pipeline" measurement (collect -> embed -> store) can sit beside ``measure_raw``.
Exits 2 if the fixtures cannot be found.
"""

# ruff: noqa: E402  (tracker is imported after putting the project root on sys.path)

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, even when it is not installed in this Python

import numpy as np

from tracker.understand import embed as embed_module
from tracker.understand.embed import MAX_TOKENS, LocalMiniLM

FIXTURES = ROOT.parent / "shared" / "fixtures"
CORPUS = FIXTURES / "eval" / "csfcube" / "corpus.jsonl"


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def load_texts(n: int, corpus: Path = CORPUS) -> list[str]:
    """``n`` real texts (title and abstract), cycling through the corpus if needed."""
    papers = []
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            paper = json.loads(line)
            papers.append(f"{paper.get('title', '').strip()}\n\n{paper.get('text', '').strip()}")
    if not papers:
        raise SystemExit(f"{corpus} holds no papers")
    return [papers[i % len(papers)] for i in range(n)]


def token_counts(embedder: LocalMiniLM, texts: Sequence[str]) -> list[int]:
    tokenizer = embedder._loaded().tokenizer
    return [len(ids) for ids in embedder._token_ids(tokenizer, list(texts))]


def measure_raw(
    texts: Sequence[str],
    batch_size: int = 32,
    threads: int | None = None,
    batch_tokens: int = 512,
) -> dict[str, Any]:
    """Figures for ``LocalMiniLM.embed`` alone over ``texts``."""
    rss_before = peak_rss_mb()
    embedder = LocalMiniLM(batch_size=batch_size, threads=threads, batch_tokens=batch_tokens)
    started = time.perf_counter()
    embedder.load()
    load_seconds = time.perf_counter() - started
    counts = token_counts(embedder, texts)
    embedder.embed(["warm up"])  # the first run allocates onnxruntime's buffers

    started = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    if not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4):
        raise SystemExit("embed() returned rows that are not unit length")

    latencies = []
    for start in range(0, min(len(texts), 10 * batch_size), batch_size):
        t0 = time.perf_counter()
        embedder.embed(texts[start : start + batch_size])
        latencies.append(time.perf_counter() - t0)
    latencies.sort()
    return {
        "model": embedder.name,
        "texts": len(texts),
        "batch_size": batch_size,
        "batch_tokens": batch_tokens,
        "threads": embedder.threads,
        "tokens_mean": statistics.fmean(counts),
        "truncated_share": sum(c >= MAX_TOKENS for c in counts) / len(counts),
        "load_seconds": load_seconds,
        "seconds": seconds,
        "texts_per_second": len(texts) / seconds,
        "tokens_per_second": sum(counts) / seconds,
        "batch_latency_p50": statistics.median(latencies),
        "batch_latency_p90": latencies[math.ceil(0.9 * len(latencies)) - 1],  # nearest rank
        "batches_timed": len(latencies),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_before_mb": rss_before,
    }


class _Timed:
    """An embedder that keeps count of the time spent inside the model."""

    def __init__(self, inner: LocalMiniLM):
        self.inner = inner
        self.name = inner.name
        self.dimensions = inner.dimensions
        self.seconds = 0.0
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        started = time.perf_counter()
        try:
            return self.inner.embed_spans(texts, spans)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)


def measure_pipeline(texts: Sequence[str]) -> dict[str, Any]:
    """``tracker process`` over the same texts stored as new papers, end to end.

    Everything the pipeline does is in the time: chunking, embedding (new text
    only), story assignment, Chroma writes, extractive summaries.
    """
    import tempfile
    from datetime import UTC, datetime

    from storage.state import SQLiteStateStore
    from tracker.app import Tracker
    from tracker.models import Item, ItemKind, Validators
    from tracker.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), sources_path=Path(home) / "sources.yaml")
        now = datetime.now(UTC)
        items = []
        for n, text in enumerate(texts):
            title, _, abstract = text.partition("\n\n")
            items.append(
                Item(
                    id=f"arxiv:bench.{n:05d}",
                    source="bench",
                    source_kind="arxiv",
                    kind=ItemKind.PAPER,
                    url=f"https://arxiv.org/abs/bench.{n:05d}",
                    title=title,
                    text=abstract,
                    published=now,
                    extra={"arxiv_id": f"bench.{n:05d}"},
                )
            )
        with SQLiteStateStore(settings.state_db) as state:
            state.save_success("bench", "arxiv", items, Validators(), "ok", now)
            tracker = Tracker(settings, state)
            timed = _Timed(LocalMiniLM())
            timed.inner.load()
            timed.inner.embed(["warm up"])
            tracker.__dict__["embedder"] = timed  # the same model, with a stopwatch
            started = time.perf_counter()
            report = tracker.process()
            seconds = time.perf_counter() - started
    return {
        "items": report.items,
        "seconds": seconds,
        "items_per_second": report.items / seconds,
        "chunks": report.chunks,
        "texts_embedded": timed.texts,
        "model_seconds": timed.seconds,
        "summaries": report.summaries,
        "stories": report.new_stories,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_threading(texts: Sequence[str], rounds: int = 3) -> dict[str, float]:
    """Median texts/s of ways to use the cores, interleaved over ``rounds`` so that noise
    from other work on the machine hits them alike.

    What ``LocalMiniLM`` does (one thread per run, a run per core, 512-token batches) against
    one run at a time using onnxruntime's intra-op threads, with the same batches and with
    plain batches of 32 texts, and against a single core.
    """
    import onnxruntime as ort

    cores = embed_module._usable_cpus()
    base = LocalMiniLM()
    loaded = base._loaded()
    ids = base._token_ids(loaded.tokenizer, list(texts))
    lengths = [len(row) for row in ids]
    model = embed_module._verified_bytes(
        embed_module._package_file(embed_module.MODEL_DISTRIBUTION, embed_module.MODEL_FILE),
        embed_module.MODEL_SHA256,
        embed_module.MODEL_DISTRIBUTION,
    )
    sessions: dict[int, embed_module._Loaded] = {}
    for intra in {1, cores}:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        sessions[intra] = embed_module._Loaded(session, loaded.tokenizer, loaded.input_names)
        base._run(sessions[intra], [ids[0]])  # warm up
    # label -> (intra-op threads, runs at once, texts per batch, padded tokens per batch)
    ways = {
        f"{cores} runs at once x 1 thread, 512-token batches (default)": (1, cores, 32, 512),
        f"1 run at a time x {cores} threads, 512-token batches": (cores, 1, 32, 512),
        f"1 run at a time x {cores} threads, batches of 32": (cores, 1, 32, 10**9),
        "1 run at a time x 1 thread, 512-token batches": (1, 1, 32, 512),
    }
    rates: dict[str, list[float]] = {label: [] for label in ways}
    for _ in range(rounds):
        for label, (intra, at_once, batch_size, batch_tokens) in ways.items():
            plan = embed_module.plan_batches(lengths, batch_size, batch_tokens, at_once)
            session = sessions[intra]
            started = time.perf_counter()
            with ThreadPoolExecutor(at_once) as pool:
                list(pool.map(lambda b, s=session: base._run(s, [ids[i] for i in b]), plan))
            rates[label].append(len(texts) / (time.perf_counter() - started))
    return {label: statistics.median(values) for label, values in rates.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1000, help="how many texts (default 1000)")
    parser.add_argument("--batch-size", type=int, default=32, help="most texts per model run")
    parser.add_argument(
        "--batch-tokens", type=int, default=512, help="most padded word pieces per model run"
    )
    parser.add_argument("--threads", type=int, default=None, help="runs at once (default: cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--raw-only", action="store_true", help="skip the pipeline measurement")
    parser.add_argument(
        "--threads-experiment", action="store_true", help="also compare threading strategies"
    )
    args = parser.parse_args(argv)
    if not CORPUS.is_file():
        print(f"cannot find {CORPUS} (the shared fixtures)", file=sys.stderr)
        return 2
    if args.texts < 1:
        parser.error("--texts must be at least 1")

    texts = load_texts(args.texts)
    figures: dict[str, Any] = {
        "raw": measure_raw(texts, args.batch_size, args.threads, args.batch_tokens)
    }
    if args.threads_experiment:
        figures["threading"] = measure_threading(texts[:200])
    if not args.raw_only:
        figures["pipeline"] = measure_pipeline(texts)
        figures["pipeline_over_raw"] = (
            figures["pipeline"]["items_per_second"] / figures["raw"]["texts_per_second"]
        )

    if args.json:
        print(json.dumps(figures, indent=None))
        return 0
    raw = figures["raw"]
    print(
        f"{raw['model']}: {raw['texts']} csfcube titles+abstracts, "
        f"{raw['tokens_mean']:.0f} word pieces on average, "
        f"{raw['truncated_share']:.0%} truncated at {MAX_TOKENS}"
    )
    print(f"  model load        {raw['load_seconds']:.2f} s")
    print(
        f"  throughput        {raw['texts_per_second']:.1f} texts/s "
        f"({raw['tokens_per_second']:,.0f} word pieces/s; {raw['seconds']:.1f} s), "
        f"batches of <= {raw['batch_size']} texts and <= {raw['batch_tokens']} word pieces, "
        f"{raw['threads']} at once"
    )
    print(
        f"  one batch         p50 {raw['batch_latency_p50'] * 1000:.0f} ms, "
        f"p90 {raw['batch_latency_p90'] * 1000:.0f} ms ({raw['batches_timed']} embed() calls "
        f"of {raw['batch_size']} texts)"
    )
    before = raw["peak_rss_before_mb"]
    print(f"  peak RSS          {raw['peak_rss_mb']:.0f} MB ({before:.0f} MB before loading)")
    for label, rate in figures.get("threading", {}).items():
        print(f"  {label:62s} {rate:5.1f} texts/s")
    if "pipeline" in figures:
        pipe = figures["pipeline"]
        print(
            f"tracker process on the same {pipe['items']} texts as new papers: "
            f"{pipe['items_per_second']:.1f} items/s ({pipe['seconds']:.1f} s), "
            f"{figures['pipeline_over_raw']:.2f} of the raw model's rate"
        )
        print(
            f"  inside the model  {pipe['model_seconds']:.1f} s for {pipe['texts_embedded']} texts "
            f"({pipe['chunks']} chunks; the rest are summary sentences that could not be pooled "
            "from the chunks' run); "
            f"{pipe['stories']} stories, {pipe['summaries']} summaries"
        )
        print(f"  peak RSS          {pipe['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
