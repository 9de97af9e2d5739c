"""Answering questions from the corpus: hybrid retrieval, then an answer with citations.

Retrieval runs the question through BM25 (bm25s, over the chunks' text kept in
SQLite) and through the dense index (Chroma), fuses the two rankings with
reciprocal rank fusion, and caps how many passages one story may contribute.
Without an LLM the answer is extractive: excerpts from the one story that best
supports an answer (cited [1]), or "not covered" when the signals of support say the
corpus does not answer it; both decided in tracker.answer.support. Either way the chosen story
is also read at its chunks nearest what is asked (``StoryChunks.nearest``): retrieval
finds the passages that name a paper's subject, and the answer is often elsewhere in it.
With an LLM configured, ``tracker.answer.llm`` writes the answer instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from tracker.answer.support import Sentence, Support, weigh
from tracker.embedder import Embedder

#: Reciprocal rank fusion constant (Cormack et al. use 60).
RRF_K = 60
#: Passages retrieved to answer from: enough for each of a few stories to show several.
ANSWER_N = 12
ANSWER_PER_STORY = 3


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    kind: str | None = None
    source: str | None = None

    def allows(self, row: Mapping[str, Any]) -> bool:
        if self.kind and row.get("kind") != self.kind:
            return False
        if self.source and row.get("source") != self.source:
            return False
        if self.since is not None:
            ts = row.get("published_ts")
            if ts is None or int(ts) < int(self.since.timestamp()):
                return False
        return True

    def chroma_where(self) -> dict[str, Any] | None:
        conditions: list[dict[str, Any]] = []
        if self.kind:
            conditions.append({"kind": self.kind})
        if self.source:
            conditions.append({"source": self.source})
        if self.since is not None:
            conditions.append({"published_ts": {"$gte": int(self.since.timestamp())}})
        if not conditions:
            return None
        return conditions[0] if len(conditions) == 1 else {"$and": conditions}


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    story_id: str
    title: str
    url: str
    source: str
    kind: str
    text: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict, compare=False)
    #: Who publishes it (its blog or project and its authors; ``tracker.models.byline``).
    byline: str = ""


class LexicalIndex:
    """BM25 over chunk texts; rebuilt by the caller when the chunks change."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]):
        import bm25s

        self.rows = list(rows)
        self.by_id = {str(r["id"]): r for r in self.rows}
        self.by_story: dict[str, list[Mapping[str, Any]]] = {}
        for r in self.rows:
            self.by_story.setdefault(str(r["story_id"]), []).append(r)
        self._bm25 = None
        if self.rows:
            tokens = bm25s.tokenize(
                [str(r["text"]) for r in self.rows], stopwords="en", show_progress=False
            )
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)

    def search(self, query: str, k: int, filters: Filters) -> list[tuple[int, float]]:
        """Row indexes and scores, best first; rows with no matching word are left out."""
        if self._bm25 is None:
            return []
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        mask = None
        if filters != Filters():  # a per-row mask costs ~10 ms at 100k chunks: only if needed
            mask = np.array([filters.allows(r) for r in self.rows], dtype=np.float32)
            if not mask.any():
                return []
        k = min(k, int(mask.sum()) if mask is not None else len(self.rows))
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, weight_mask=mask)
        return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if float(s) > 0]


def fuse(rankings: Mapping[str, Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ids by the sum of 1/(k + rank) over the rankings."""
    scores: dict[str, float] = {}
    for ranking in rankings.values():
        for rank, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def cap_per_story(passages: Sequence[Passage], per_story: int, n: int) -> list[Passage]:
    """At most ``per_story`` passages of one story, so one long post cannot fill every slot."""
    taken: dict[str, int] = {}
    out = []
    for passage in passages:
        if taken.get(passage.story_id, 0) >= per_story:
            continue
        taken[passage.story_id] = taken.get(passage.story_id, 0) + 1
        out.append(passage)
        if len(out) >= n:
            break
    return out


class DenseIndex(Protocol):
    def query(
        self, vector: np.ndarray, n: int, where: Mapping[str, Any] | None = None
    ) -> list[Any]: ...


def retrieve(
    question: str,
    filters: Filters,
    lexical: LexicalIndex,
    dense: DenseIndex | None,
    embedder: Embedder | None,
    n: int = 8,
    per_story: int = 2,
    depth: int = 100,
    methods: Sequence[str] = ("bm25", "dense"),
) -> list[Passage]:
    """The ``n`` best passages for ``question`` by the chosen methods, fused."""
    by_id = lexical.by_id
    rankings: dict[str, list[str]] = {}
    if "bm25" in methods:
        rankings["bm25"] = [
            str(lexical.rows[i]["id"]) for i, _ in lexical.search(question, depth, filters)
        ]
    if "dense" in methods and dense is not None and embedder is not None:
        vector = embedder.embed([question])[0]
        hits = dense.query(vector, depth, filters.chroma_where())
        rankings["dense"] = [h.id for h in hits if h.id in by_id]
    fused = fuse(rankings)
    passages = [
        passage_of(
            by_id[chunk_id],
            score,
            {m: r.index(chunk_id) + 1 for m, r in rankings.items() if chunk_id in r},
        )
        for chunk_id, score in fused
    ]
    return cap_per_story(passages, per_story, n)


def passage_of(row: Mapping[str, Any], score: float, ranks: dict[str, int]) -> Passage:
    return Passage(
        chunk_id=str(row["id"]),
        story_id=str(row["story_id"]),
        title=str(row["title"]),
        url=str(row["url"]),
        source=str(row["source"]),
        kind=str(row["kind"]),
        text=str(row["text"]),
        score=score,
        ranks=ranks,
        byline=str(row.get("byline") or ""),
    )


class StoryChunks:
    """A story's every chunk that the filters allow, as passages (unranked), and which of
    them are nearest a text by their stored vectors. The chosen story is read beyond the
    passages retrieval found for it, since those named its subject best and seldom answer;
    the chunks nearest what is asked hold the answer more often than those sharing its
    words (bench/answers.py)."""

    def __init__(
        self,
        lexical: LexicalIndex,
        filters: Filters,
        dense: DenseIndex | None = None,
        embedder: Embedder | None = None,
    ):
        self.lexical, self.filters, self.dense, self.embedder = lexical, filters, dense, embedder

    def __call__(self, story_id: str) -> list[Passage]:
        rows = self.lexical.by_story.get(story_id, [])
        return [passage_of(r, 0.0, {}) for r in rows if self.filters.allows(r)]

    def nearest(self, story_id: str, text: str, n: int) -> list[str] | None:
        """Ids of the story's ``n`` chunks nearest ``text``, nearest first; None when there
        is no dense index to ask."""
        if self.dense is None or self.embedder is None:
            return None
        vector = self.embedder.embed([text])[0]
        where = self.filters.chroma_where()
        story = {"story_id": story_id}
        hits = self.dense.query(vector, n, {"$and": [story, where]} if where else story)
        return [h.id for h in hits if h.id in self.lexical.by_id]


@dataclass(frozen=True)
class Citation:
    """A cited source: the member of the story that says it (its own title and link), and
    the story's title where that differs (a release of a project whose story is titled
    after its newest release; a blog post about a paper)."""

    n: int
    title: str
    url: str
    story_id: str
    story_title: str | None = None

    @property
    def label(self) -> str:
        """How it reads: "infer v0.6.0 (in: infer v0.7.0rc1)"."""
        return f"{self.title} (in: {self.story_title})" if self.story_title else self.title


@dataclass(frozen=True)
class Answer:
    text: str
    mode: str  # "extractive" or "llm"
    citations: tuple[Citation, ...]
    found: bool = True
    #: Why the LLM's answer was not used, when an LLM is configured and this is the
    #: excerpts' answer instead (a timeout, an error, an unsupported reply).
    fallback_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "mode": self.mode,
            "found": self.found,
            "citations": [c.__dict__ for c in self.citations],
            "fallback_reason": self.fallback_reason,
        }


NOT_COVERED = "The collected sources do not cover this question."
NOT_PROCESSED = (
    "What is collected is not processed yet, so there is nothing to answer from: run  "
    "tracker process  (tracker collect does it unless --no-process)."
)
NOTHING_YET = (
    "Nothing is collected yet, so there is nothing to answer from: run  tracker collect  "
    "(tracker serve collects at start)."
)


def nothing_found(
    filters: Filters, known_sources: Sequence[str], corpus_empty: bool, unprocessed: bool = False
) -> Answer:
    """Why no passage was found, when it is not the question: nothing collected yet, nothing
    processed yet, a source that does not exist, or filters that match nothing (pure)."""
    if corpus_empty:
        return Answer(NOTHING_YET, "extractive", (), False)
    if unprocessed:
        return Answer(NOT_PROCESSED, "extractive", (), False)
    if filters.source and filters.source not in known_sources:
        names = ", ".join(sorted(known_sources)) or "none yet"
        said = f"No source is called {filters.source!r}; the sources are: {names}."
        return Answer(said, "extractive", (), False)
    asked = [
        f"from {filters.source}" if filters.source else "",
        f"of kind {filters.kind}" if filters.kind else "",
        f"published since {filters.since:%Y-%m-%d %H:%M} UTC" if filters.since else "",
    ]
    if not any(asked):
        return Answer(NOT_COVERED, "extractive", (), False)
    what = " ".join(a for a in asked if a)
    said = f"Nothing collected is {what}, so nothing was searched; try without that filter."
    return Answer(said, "extractive", (), False)


def extractive_answer(
    question: str,
    passages: Sequence[Passage],
    embedder: Embedder,
    chunks: Callable[[str], Sequence[Passage]] | None = None,
) -> Answer:
    """Excerpts from the story that best answers the question, cited [1]; a second story
    only when it supports the answer on its own (and the answer says so). "Not covered"
    when the signals of support say the corpus does not answer it (tracker.answer.support).
    ``chunks``: a story's every chunk (``StoryChunks``), to read the chosen story whole."""
    support = weigh(question, passages, embedder, chunks)
    return excerpts_answer(support, passages)


def excerpts_answer(support: Support, passages: Sequence[Passage]) -> Answer:
    """The extractive answer for a weighed question (pure)."""
    if not support.covered or support.story is None or not support.excerpts:
        return Answer(NOT_COVERED, "extractive", (), False)
    first = _cited(support.excerpts, passages, support.story.story_id)
    citations = [first]
    # What [1] names says every quoted line: another member's lines are not passed off
    # as its (two releases of one project in one story).
    said = [s for s in support.excerpts if not s.url or s.url == first.url] or support.excerpts
    lines = [f"> {s.text} [1]" for s in said]
    if support.also is not None and support.also_excerpt is not None:
        second = next(p for p in passages if p.story_id == support.also.story_id)
        citations.append(Citation(2, second.title, second.url, second.story_id))
        lines.append("Also supported by another source:")
        lines.append(f"> {support.also_excerpt.text} [2]")
    return Answer("Excerpts from the sources:\n" + "\n".join(lines), "extractive", tuple(citations))


def _cited(excerpts: Sequence[Sentence], passages: Sequence[Passage], story_id: str) -> Citation:
    """Citation [1]: the member of the story that says the best excerpt (its item's title
    and link), or the story's best passage when the excerpt's own item is not known."""
    for sentence in sorted(excerpts, key=lambda s: -s.score):
        if sentence.title and sentence.url:
            return Citation(1, sentence.title, sentence.url, story_id)
    best = next(p for p in passages if p.story_id == story_id)
    return Citation(1, best.title, best.url, story_id)


def cite_stories(
    passages: Sequence[Passage], used: Iterable[int]
) -> tuple[dict[int, int], tuple[Citation, ...]]:
    """Citation numbers for the passages an answer uses, one per story: two passages of one
    story (a paper and the post about it, or two chunks of one post) share a number and a
    link. Stories are numbered in the order of their best passage (the retrieval rank)."""
    numbers: dict[str, int] = {}
    renumber: dict[int, int] = {}
    citations: list[Citation] = []
    for n in sorted(set(used)):
        p = passages[n - 1]
        if p.story_id not in numbers:
            numbers[p.story_id] = len(numbers) + 1
            citations.append(Citation(numbers[p.story_id], p.title, p.url, p.story_id))
        renumber[n] = numbers[p.story_id]
    return renumber, tuple(citations)
