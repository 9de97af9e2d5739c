"""The processing pipeline: new items -> chunks and embeddings -> stories -> summaries.

I/O lives at the edges (the stores, the embedder, the summariser); the
decisions are the pure functions of ``tracker.understand.chunking``, ``tracker.understand.stories``
and ``tracker.understand.rank``. Work goes in batches of items so that the embedder sees
many texts at once, and each item is placed in its story in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from storage.chunks import ChunkStore
from storage.embedding_cache import EmbeddingCache
from storage.queue import ProcessingQueue
from storage.stories import SQLiteStoryStore
from storage.vectors import ChunkRecord, VectorStore
from tracker.embedder import Embedder, SpanEmbedder
from tracker.models import Candidate, Item, identities, reader_hash
from tracker.times import utcnow
from tracker.understand.chunking import Chunk, chunk_text
from tracker.understand.prose import strip_inline_markdown
from tracker.understand.stories import (
    DEFAULT_THRESHOLD,
    CandidatePool,
    assign,
    edit_plan,
    item_keys,
    plan,
)
from tracker.understand.summary import SentenceSource, Summariser, Summary, SummaryInput

#: Items per batch: enough for the embedder to batch well, little enough to stay lean.
BATCH_ITEMS = 256


@dataclass
class ProcessReport:
    items: int = 0
    new_stories: int = 0
    joined_by_key: int = 0
    joined_as_similar: int = 0
    updates: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    summaries: int = 0
    summaries_llm: int = 0
    summary_fallbacks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "seconds": round(self.seconds, 3)}


@dataclass
class Pipeline:
    stories: SQLiteStoryStore
    queue: ProcessingQueue
    cache: EmbeddingCache
    chunks: ChunkStore
    vectors: VectorStore
    embedder: Embedder
    summariser: Summariser
    window: timedelta = timedelta(days=14)
    threshold: float = DEFAULT_THRESHOLD
    now: Callable[[], datetime] = utcnow
    on_progress: Callable[[int, int], None] | None = None
    _pooled: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def run(self) -> ProcessReport:
        started = time.perf_counter()
        report = ProcessReport()
        total = self.queue.count_pending()
        if self.on_progress:
            self.on_progress(0, total)
        done = 0
        fresh: set[str] = set()  # stories this run made: joining one is no news of it
        # One batch at a time from the database: a backlog of 100k items is never in
        # memory at once. Each batch is marked processed, so the next query moves on.
        while batch := self.queue.pending_items(limit=BATCH_ITEMS):
            touched = self._process_batch(batch, report, fresh)
            # Stories this batch changed (a post that turned out to be about a paper, a
            # merge) are summarised while the batch's pooled sentence vectors are at hand.
            self._summarise(report, only=touched)
            done += len(batch)
            if self.on_progress:
                self.on_progress(min(done, total), total)
        self._pooled = {}
        self._summarise(report)  # what is left: LLM summaries whose retry time has come
        report.seconds = time.perf_counter() - started
        return report

    # --- embedding ---------------------------------------------------------------

    def _embed_chunks(
        self,
        chunks: Sequence[Chunk],
        report: ProcessReport,
        wanted_spans: Mapping[str, list[str]] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Vectors for every chunk, embedding only text never embedded before.

        With ``wanted_spans`` (chunk hash -> phrases inside it) and an embedder that can
        pool spans, the phrases' vectors come from the same model run (second result).
        """
        hashes = [c.content_hash for c in chunks]
        vectors = self.cache.get(hashes, self.embedder.name)
        missing: dict[str, str] = {}
        for chunk in chunks:
            if chunk.content_hash not in vectors:
                missing.setdefault(chunk.content_hash, chunk.text)
        phrases: dict[str, np.ndarray] = {}
        if missing:
            if wanted_spans and isinstance(self.embedder, SpanEmbedder):
                spans = [_spans(text, wanted_spans.get(h, [])) for h, text in missing.items()]
                fresh, pooled = self.embedder.embed_spans(
                    list(missing.values()), [s for s, _ in spans]
                )
                for (_, found), rows in zip(spans, pooled, strict=True):
                    for phrase, row in zip(found, rows, strict=True):
                        if row.any():
                            phrases.setdefault(phrase, row)
            else:
                fresh = self.embedder.embed(list(missing.values()))
            new = dict(zip(missing, fresh, strict=True))
            self.cache.put(new, self.embedder.name)
            vectors.update(new)
            report.chunks_embedded += len(new)
        report.chunks += len(chunks)
        return vectors, phrases

    # --- stories -----------------------------------------------------------------

    def _process_batch(self, items: list[Item], report: ProcessReport, fresh: set[str]) -> set[str]:
        chunked = {(i.source, i.id): chunk_text(i.title, i.text) for i in items}
        sentences = self._summary_sentences(items, chunked)
        wanted: dict[str, list[str]] = {}
        for key, phrases in sentences.items():
            for chunk in chunked[key]:
                wanted.setdefault(chunk.content_hash, []).extend(phrases)
        vectors, phrase_vectors = self._embed_chunks(
            [c for cs in chunked.values() for c in cs], report, wanted
        )
        self._pooled = phrase_vectors
        now = self.now()
        candidates = CandidatePool(self.stories.candidates(now - self.window, self.embedder.name))
        records: dict[str, list[ChunkRecord]] = {}
        touched: set[str] = set()
        for item in items:
            chunks = chunked[(item.source, item.id)]
            vector = vectors[chunks[0].content_hash] if chunks else None
            story_id = self._place(item, vector, candidates, now, report, fresh)
            touched.add(story_id)
            item_key = f"{item.source}/{item.id}"
            records[item_key] = [
                ChunkRecord(
                    id=f"{item_key}#{c.index}",
                    text=c.text,
                    vector=vectors[c.content_hash],
                    metadata=_metadata(item, story_id, c),
                )
                for c in chunks
            ]
            report.items += 1
        with self.vectors.writing():  # a backup copies both or neither
            self.vectors.replace_items(records)
            self.chunks.replace(records)
        self.queue.mark_processed(items, now, [content_hash(i) for i in items])
        return touched

    def _place(
        self,
        item: Item,
        vector: np.ndarray | None,
        candidates: CandidatePool,
        now: datetime,
        report: ProcessReport,
        fresh: set[str],
    ) -> str:
        keys = item_keys(item)
        model = self.embedder.name
        existing = self.stories.story_of(item.source, item.id)
        if existing is not None:
            before = self.queue.processed_content(item.source, item.id)
            # None: placed by a run that stopped before it finished, or re-embedding; the
            # same words: the feed only moved a timestamp. Neither is news.
            changed = before is not None and before not in (
                content_hash(item),
                item.extra.get("teaser_hash"),  # its article page came: not an edit
            )
            edit = edit_plan(item, existing, changed)
            self.stories.place(item, edit, keys.strong, vector, now, (), model)
            report.updates += 1 if edit.update_note else 0
            return existing
        index = self.stories.key_index(keys.strong | keys.weak)
        match = assign(keys, vector, index, candidates, now, self.window, self.threshold)
        joined = match.story_id
        decided = plan(
            item,
            match,
            self.stories.story_kind(joined) if joined else None,
            self.stories.paper_version(joined) if joined else None,
        )
        if joined in fresh and decided.update_note:
            # Two releases of a project (or a paper and its new version) arriving in one
            # run: one story, new to its reader, not an update of itself.
            decided = replace(decided, update_note=None)
        note = decided.update_note
        placement = self.stories.place(item, decided, keys.strong, vector, now, keys.weak, model)
        if placement.new_story:
            fresh.add(placement.story_id)
            report.new_stories += 1
            if vector is not None:
                candidates.append(
                    Candidate(placement.story_id, vector, now, identities(keys.strong))
                )
        elif match.reason == "similar":
            report.joined_as_similar += 1
        else:
            report.joined_by_key += 1
        if note:
            report.updates += 1
        return placement.story_id

    # --- summaries -----------------------------------------------------------------

    def _summary_sentences(
        self, items: list[Item], chunked: Mapping[tuple[str, str], list[Chunk]]
    ) -> dict[tuple[str, str], list[str]]:
        """The sentences (and title) an extractive summary of each new item will weigh.

        Their vectors are pooled from the chunks' own model run instead of a second run,
        which would cost more than embedding the chunks. Only for new items (a new story
        is the usual outcome), only with the extractive summariser, and not for release
        notes (their lines are weighed differently).
        """
        source = self.summariser
        if not isinstance(source, SentenceSource) or not isinstance(self.embedder, SpanEmbedder):
            return {}
        # The same text the summariser will split (it reads at most this much).
        limit = source.max_input_chars
        out: dict[tuple[str, str], list[str]] = {}
        for item in items:
            if item.kind.value == "release" or not chunked[(item.source, item.id)]:
                continue
            if self.stories.story_of(item.source, item.id) is not None:
                continue
            title = strip_inline_markdown(item.title)
            out[(item.source, item.id)] = [*source.sentences(item.text[:limit]), title]
        return out

    def _summarise(self, report: ProcessReport, only: set[str] | None = None) -> None:
        for job in self.stories.summary_jobs(self.now(), only):
            summary = self.summariser.summarise(
                SummaryInput(
                    title=job.title,
                    text=job.text,
                    kind=job.kind.value,
                    source=job.source,
                    url=job.url,
                    known_vectors=self._pooled,
                )
            )
            self._record_summary(job.story_id, job.title, summary, report)

    def _record_summary(
        self, story_id: str, title: str, summary: Summary, report: ProcessReport
    ) -> None:
        self.stories.save_summary(
            story_id,
            summary.text,
            summary.method,
            summary.model,
            summary.fallback_reason,
            self.now(),
        )
        report.summaries += 1
        if summary.method == "llm":
            report.summaries_llm += 1
        if summary.fallback_reason:
            report.summary_fallbacks.append(f"{title[:60]}: {summary.fallback_reason}")


def content_hash(item: Item) -> str:
    """What a reader of the item sees: its title and text."""
    return reader_hash(item.title, item.text)


def _spans(text: str, phrases: Sequence[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """Where each phrase sits in ``text`` (those that do not are left out)."""
    spans: list[tuple[int, int]] = []
    found: list[str] = []
    for phrase in dict.fromkeys(phrases):
        start = text.find(phrase) if phrase else -1
        if start >= 0:
            spans.append((start, start + len(phrase)))
            found.append(phrase)
    return spans, found


def _metadata(item: Item, story_id: str, chunk: Chunk) -> dict[str, str | int | float | bool]:
    meta: dict[str, str | int | float | bool] = {
        "item_id": item.id,
        "story_id": story_id,
        "kind": item.kind.value,
        "source": item.source,
        "url": item.url,
        "title": item.title[:500],
        "chunk": chunk.index,
        "hash": chunk.content_hash,
    }
    if item.published is not None:
        meta["published"] = item.published.isoformat()
        meta["published_ts"] = int(item.published.timestamp())
    return meta
