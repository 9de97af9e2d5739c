"""The processing pipeline: new items -> chunks and embeddings -> stories -> summaries.

I/O lives at the edges (the stores, the embedder, the summariser); the
decisions are the pure functions of ``tracker.chunking``, ``tracker.stories``
and ``tracker.rank``. Work goes in batches of items so that the embedder sees
many texts at once, and each item is placed in its story in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from storage.stories import SQLiteStoryStore
from storage.vectors import ChunkRecord, VectorStore
from tracker.chunking import Chunk, chunk_text
from tracker.embed import Embedder
from tracker.models import Item
from tracker.stories import (
    DEFAULT_THRESHOLD,
    Candidate,
    assign,
    identities,
    item_keys,
    update_note,
)
from tracker.summarise import Summariser, SummaryInput

#: Items per batch: enough for the embedder to batch well, little enough to stay lean.
BATCH_ITEMS = 256


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    vectors: VectorStore
    embedder: Embedder
    summariser: Summariser
    window: timedelta = timedelta(days=14)
    threshold: float = DEFAULT_THRESHOLD
    now: Callable[[], datetime] = utcnow
    on_progress: Callable[[int, int], None] | None = None

    def run(self) -> ProcessReport:
        started = time.perf_counter()
        report = ProcessReport()
        pending = self.stories.pending_items()
        total = len(pending)
        if self.on_progress:
            self.on_progress(0, total)
        for start in range(0, total, BATCH_ITEMS):
            batch = pending[start : start + BATCH_ITEMS]
            self._process_batch(batch, report)
            if self.on_progress:
                self.on_progress(min(start + BATCH_ITEMS, total), total)
        self._summarise(report)
        report.seconds = time.perf_counter() - started
        return report

    # --- embedding ---------------------------------------------------------------

    def _embed_chunks(
        self, chunks: Sequence[Chunk], report: ProcessReport
    ) -> dict[str, np.ndarray]:
        """Vectors for every chunk, embedding only text never embedded before."""
        hashes = [c.content_hash for c in chunks]
        vectors = self.stories.cached_vectors(hashes, self.embedder.name)
        missing: dict[str, str] = {}
        for chunk in chunks:
            if chunk.content_hash not in vectors:
                missing.setdefault(chunk.content_hash, chunk.text)
        if missing:
            fresh = self.embedder.embed(list(missing.values()))
            new = dict(zip(missing, fresh, strict=True))
            self.stories.cache_vectors(new, self.embedder.name)
            vectors.update(new)
            report.chunks_embedded += len(new)
        report.chunks += len(chunks)
        return vectors

    # --- stories -----------------------------------------------------------------

    def _process_batch(self, items: list[Item], report: ProcessReport) -> None:
        chunked = {(i.source, i.id): chunk_text(i.title, i.text) for i in items}
        vectors = self._embed_chunks([c for cs in chunked.values() for c in cs], report)
        now = self.now()
        candidates = self.stories.candidates(now - self.window)
        records: dict[str, list[ChunkRecord]] = {}
        for item in items:
            chunks = chunked[(item.source, item.id)]
            vector = vectors[chunks[0].content_hash] if chunks else None
            story_id = self._place(item, vector, candidates, now, report)
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
        self.vectors.replace_items(records)

    def _place(
        self,
        item: Item,
        vector: np.ndarray | None,
        candidates: list[Candidate],
        now: datetime,
        report: ProcessReport,
    ) -> str:
        keys = item_keys(item)
        existing = self.stories.story_of(item.source, item.id)
        if existing is not None:
            # The item changed upstream (edited post, new paper version, edited notes).
            self.stories.place(item, existing, keys.strong, vector, now, _changed_note(item))
            report.updates += 1
            return existing
        index = self.stories.key_index(keys.strong | keys.weak)
        match = assign(keys, vector, index, candidates, now, self.window, self.threshold)
        previous = self.stories.paper_version(match.story_id) if match.story_id else None
        note = update_note(item, match.reason, previous) if match.story_id else None
        placement = self.stories.place(
            item, match.story_id, keys.strong | keys.weak, vector, now, note
        )
        if placement.new_story:
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

    def _summarise(self, report: ProcessReport) -> None:
        for job in self.stories.summary_jobs():
            summary = self.summariser.summarise(
                SummaryInput(
                    title=job.title,
                    text=job.text,
                    kind=job.kind.value,
                    source=job.source,
                    url=job.url,
                )
            )
            self.stories.save_summary(
                job.story_id, summary.text, summary.method, summary.model, summary.fallback_reason
            )
            report.summaries += 1
            if summary.method == "llm":
                report.summaries_llm += 1
            if summary.fallback_reason:
                report.summary_fallbacks.append(f"{job.title[:60]}: {summary.fallback_reason}")


def _changed_note(item: Item) -> str:
    version = item.extra.get("version")
    if isinstance(version, int) and version > 1:
        return f"new version v{version} of the paper"
    if item.kind.value == "release":
        return "release notes edited"
    return "updated by its author"


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
