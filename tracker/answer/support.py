"""How well the corpus supports an answer: which story answers, which of its sentences are
fit to quote, and whether to say "not covered" instead. Pure functions of the question, the
retrieved passages and an embedder.

An answer mixing "they use Leaky ReLU" from one paper with "h-swish" from another is worse
than none, so the answer comes from one story: the one whose sentences, words and retrieval
ranks best support it. Whether to answer at all rests on several signals of that support,
combined by a logistic model fitted by ``bench/answers.py`` on the project's own question
sets (answerable, about a paper removed from the corpus, about a paper whose evidence was
removed); one cosine alone barely tells them apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from tracker.answer.quotable import sentences_of
from tracker.answer.words import (
    ask_weights,
    content_words,
    coverage,
    name_share,
    names_in,
    title_share,
    weighted_coverage,
)
from tracker.embedder import Embedder


class Retrieved(Protocol):
    """What this module needs of a retrieved passage (``tracker.answer.ask.Passage``)."""

    @property
    def chunk_id(self) -> str: ...
    @property
    def story_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def ranks(self) -> dict[str, int]: ...


R = TypeVar("R", bound=Retrieved)


# --- the story that answers ----------------------------------------------------------------

#: How a story's support is summed up to choose among stories (fitted by bench/answers.py).
STORY_WEIGHTS = {"sentence": 1.0, "coverage": 0.5, "fusion": 0.25, "title": 0.5, "named": 0.5}
#: The kinds decided as papers ("": a passage that does not say, as before kinds).
PAPER = ("paper", "")

#: Sentences quoted from the chosen story, and how far below its best one they may score.
EXCERPTS = 3
EXCERPT_SLACK = 0.12
#: A second story is quoted only when its best sentence is at least this good relative to
#: the first story's, and it covers at least as much of the question.
ALSO_WITHIN = 0.02


@dataclass(frozen=True)
class Sentence:
    passage: int  # index into the passages
    order: int  # position among all candidate sentences (passage order, then text order)
    text: str
    score: float
    #: The share of the asked-for words (by rarity) in the sentence and its neighbours.
    asked: float = 0.0
    #: The item that says it (its title and link): what a citation names.
    title: str = ""
    url: str = ""


@dataclass(frozen=True)
class StorySupport:
    story_id: str
    passages: tuple[int, ...]
    sentences: tuple[Sentence, ...]  # best first
    best: float
    coverage: float
    fusion: float
    score: float
    #: The share of its headline's words the question uses (``title_share``; 0 for papers).
    titled: float = 0.0
    #: Whether the question names who publishes it in full (``name_share``).
    named: float = 0.0

    @property
    def support(self) -> float:
        """Its score without what the question calls it by (its headline, its blog or
        author): how well its text supports an answer."""
        return (
            self.score - STORY_WEIGHTS["title"] * self.titled - STORY_WEIGHTS["named"] * self.named
        )


@dataclass(frozen=True)
class Support:
    """The chosen story, its excerpts, the signals of the decision and the decision."""

    story: StorySupport | None
    excerpts: tuple[Sentence, ...] = ()
    also: StorySupport | None = None
    also_excerpt: Sentence | None = None
    signals: dict[str, float] = field(default_factory=dict)
    probability: float = 0.0
    covered: bool = False


#: Weight of the lexical part of a sentence's score (the words of what is asked).
LEXICAL = 0.3


def score_sentences(
    question: str, passages: Sequence[Retrieved], embedder: Embedder
) -> list[Sentence]:
    """Every quotable sentence, scored by how well it answers: the mean of its cosine with
    the question alone and in context (with its neighbours, which often carry the subject
    a sentence leaves to "it" or "they"), plus the share of the asked-for words (weighted
    by rarity, see ``ask_weights``) that the sentence and its neighbours contain. The
    shipped embedding model is no cross-encoder, but reading a sentence in its context
    and for what is asked does part of a reranker's job.

    The context's vector is the normalised sum of the three sentences' own vectors rather
    than the embedding of their joined text: on the project's question sets the decision,
    refitted, separates the sets as well (bench/answers.py), and ``tracker ask`` embeds a
    third of the word pieces (about 7 times faster on papers' passages)."""
    found: list[tuple[int, str, int, int]] = []  # passage, sentence, its neighbours' span
    for n, passage in enumerate(passages):
        sentences = sentences_of(passage.text, passage.title, getattr(passage, "kind", ""))
        first = len(found)
        for i, sentence in enumerate(sentences):
            found.append((n, sentence, first + max(0, i - 1), first + min(len(sentences), i + 2)))
    if not found:
        return []
    vectors = embedder.embed([question, *(s for _, s, _, _ in found)])
    asked, own = vectors[0], vectors[1:]
    words = [content_words(s) for _, s, _, _ in found]
    weights = ask_weights(content_words(question), words)
    out = []
    for order, (n, sentence, lo, hi) in enumerate(found):
        around = own[lo:hi].sum(axis=0)
        norm = float(np.linalg.norm(around))
        context = float(around @ asked) / norm if norm > 0 else 0.0
        alone = float(own[order] @ asked)
        lexical = weighted_coverage(weights, frozenset().union(*words[lo:hi]))
        score = (alone + context) / 2 + LEXICAL * lexical
        said_by = passages[n]
        out.append(
            Sentence(n, order, sentence, score, lexical, said_by.title, getattr(said_by, "url", ""))
        )
    return out


def story_support(
    question: str, passages: Sequence[Retrieved], sentences: Sequence[Sentence]
) -> list[StorySupport]:
    """Each story's support, best first; ties go to the smaller story id, so the same
    question over the same corpus always picks the same story."""
    words = content_words(question)
    top_fusion = max((p.score for p in passages), default=0.0) or 1.0
    members: dict[str, list[int]] = {}
    for n, passage in enumerate(passages):
        members.setdefault(passage.story_id, []).append(n)
    out = []
    for story_id, indexes in members.items():
        own = sorted(
            (s for s in sentences if s.passage in indexes), key=lambda s: (-s.score, s.order)
        )
        if not own:
            continue
        text = " ".join(passages[i].text for i in indexes)
        # Who publishes it is not what is asked: "what did the Logits and Coffee blogger
        # train on?" is covered by a post of that blog that says what it trained on. To
        # choose the story, naming its blog counts as said; to decide whether it answers,
        # the rest of the question must be.
        bylines = {_byline(passages[i]) for i in indexes}
        named = frozenset().union(*(names_in(words, b) for b in bylines))
        said = content_words(text)
        asked = words - named or words
        cov = len(asked & said) / len(asked) if asked else 0.0
        chosen_by = len(words & (said | named)) / len(words) if words else 0.0
        fusion = sum(passages[i].score for i in indexes) / top_fusion
        # A headline, not a paper's title: the papers' choice holds without it.
        headlines = [passages[i].title for i in indexes if _kind(passages[i]) not in PAPER]
        titled = max((title_share(words, t) for t in headlines), default=0.0)
        called = max((name_share(words, b) for b in bylines), default=0.0)
        score = (
            STORY_WEIGHTS["sentence"] * own[0].score
            + STORY_WEIGHTS["coverage"] * chosen_by
            + STORY_WEIGHTS["fusion"] * min(fusion, 2.0)
            + STORY_WEIGHTS["title"] * titled
            + STORY_WEIGHTS["named"] * called
        )
        out.append(
            StorySupport(
                story_id,
                tuple(indexes),
                tuple(own),
                own[0].score,
                cov,
                fusion,
                score,
                titled,
                called,
            )
        )
    return sorted(out, key=lambda s: (-s.score, s.story_id))


def _byline(passage: Retrieved) -> str:
    return str(getattr(passage, "byline", ""))


#: A story with fewer quotable sentences than this is short (a title, a few lines).
SHORT = 12


def _kind(passage: Retrieved) -> str:
    return str(getattr(passage, "kind", ""))


def _kind_of(passages: Sequence[Retrieved], story: StorySupport) -> str:
    return _kind(passages[story.passages[0]]) if story.passages else ""


def _story_rank(passages: Sequence[Retrieved], story_id: str, method: str) -> float:
    """The story's rank among the stories that ``method`` ranked (by their best passage),
    as 1/rank; 0 when the method did not find it."""
    best: dict[str, int] = {}
    for p in passages:
        rank = p.ranks.get(method)
        if rank is not None and rank < best.get(p.story_id, 10**9):
            best[p.story_id] = rank
    if story_id not in best:
        return 0.0
    ahead = sum(1 for s, r in best.items() if (r, s) < (best[story_id], story_id))
    return 1.0 / (1 + ahead)


def signals(
    question: str,
    passages: Sequence[Retrieved],
    stories: Sequence[StorySupport],
    excerpts: Sequence[Sentence],
) -> dict[str, float]:
    """The decision's inputs, each in about [0, 1]."""
    first = stories[0]
    words = content_words(question)
    runner_up = stories[1].support if len(stories) > 1 else first.support - 1.0
    return {
        "sentence": first.best,
        "coverage": first.coverage,
        "excerpt_coverage": coverage(words, " ".join(s.text for s in excerpts)),
        "asked": max((s.asked for s in excerpts), default=0.0),
        "asked_story": max((s.asked for s in first.sentences), default=0.0),
        "margin": first.support - runner_up,
        "bm25_rank": _story_rank(passages, first.story_id, "bm25"),
        "dense_rank": _story_rank(passages, first.story_id, "dense"),
        "question_words": min(len(words), 10) / 10,
        # What kind of story it is: release notes and a shared link's title say what they
        # say in fewer and other sentences than a paper or a post.
        "release": 1.0 if _kind_of(passages, first) == "release" else 0.0,
        "short": 1.0 - min(len(first.sentences), SHORT) / SHORT,
        "title": first.titled,
    }


#: The decision: P(covered) = sigmoid(BIAS + sum of weight * signal), fitted by
#: ``bench/answers.py --fit`` on the fit half of the project's question sets.
DECISION_WEIGHTS: dict[str, float] = {
    "sentence": -0.186,
    "coverage": 2.525,
    "excerpt_coverage": -0.393,
    "asked": -0.228,
    "asked_story": 0.682,
    "margin": 1.217,
    "bm25_rank": 1.259,
    "dense_rank": 3.794,
    "question_words": 1.374,
}
DECISION_BIAS = -8.126
#: Answer when P(covered) is at least this: the point of the trade-off curve (fit split)
#: that refuses at most about 1 in 10 answerable questions.
DECISION_THRESHOLD = 0.47

#: The decision for a story that is not a paper (a post, a release, a thread): the same
#: signals score otherwise over a two-paragraph post, a bulleted release note or a title,
#: so its own weights, fitted by ``bench/answers.py --kinds --fit`` on the fit split's
#: questions whose chosen story is not a paper, over the papers and 722 posts, releases
#: and threads; the threshold by the same rule as the papers' (``threshold_for``: the
#: highest that refuses at most 1 in 10 of the fit split's answerable questions).
OTHER_WEIGHTS: dict[str, float] = {
    "sentence": 1.26,
    "coverage": 5.41,
    "excerpt_coverage": 0.484,
    "asked": -1.473,
    "asked_story": 0.658,
    "margin": 0.067,
    "bm25_rank": 1.447,
    "dense_rank": 0.854,
    "question_words": 0.881,
    "release": -0.673,
    "short": -0.801,
    "title": 1.0,
}
OTHER_BIAS = -6.598
OTHER_THRESHOLD = 0.34


def decision_for(kind: str) -> tuple[dict[str, float], float, float]:
    """The weights, bias and threshold of the decision for a story of ``kind``: papers'
    as fitted on papers; every other kind's as fitted on posts, releases and threads."""
    if kind in PAPER:
        return DECISION_WEIGHTS, DECISION_BIAS, DECISION_THRESHOLD
    return OTHER_WEIGHTS, OTHER_BIAS, OTHER_THRESHOLD


def probability(values: dict[str, float], weights: dict[str, float], bias: float) -> float:
    z = bias + sum(weights[k] * values.get(k, 0.0) for k in weights)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


#: Chunks of the chosen story read beyond the retrieved ones, the most on-question first.
READ_CHUNKS = 4


def on_question(question: str, chunks: Sequence[R], n: int) -> list[R]:
    """The ``n`` chunks of one story that hold most of what is asked, in story order:
    the question's words weighted by their rarity among the story's chunks, so the words
    of its subject (in every chunk) count little and the asked-for ones much."""
    words = [content_words(c.text) for c in chunks]
    weights = ask_weights(content_words(question), words)
    ranked = sorted(range(len(chunks)), key=lambda i: (-weighted_coverage(weights, words[i]), i))
    return [chunks[i] for i in sorted(ranked[:n])]


#: A question word in at least this share of the story's chunks names the story's subject.
SUBJECT_SHARE = 0.3
#: ... of a story of at least this many chunks.
SUBJECT_CHUNKS = 3


def asked_part(question: str, chunks: Sequence[Retrieved]) -> str:
    """The question without the words of the story's subject or of who publishes it: "In
    the work on Turkish sentiment analysis, which features are used?" asks, of that story,
    "which features are used?", and "what did the Logits and Coffee blogger train on?"
    asks "what did they train on?". Embedding the whole question finds the sentences that
    name the subject best, which seldom answer."""
    if not chunks:
        return question
    words = [content_words(c.text) for c in chunks]
    named = frozenset().union(*(names_in(content_words(question), _byline(c)) for c in chunks))
    # In a story of a chunk or two every word it holds is in most of them: its subject
    # cannot be told apart from what is asked (a thread's title says both).
    long = len(chunks) >= SUBJECT_CHUNKS

    def subject(stem: frozenset[str]) -> bool:
        return long and sum(1 for w in words if stem <= w) / len(words) >= SUBJECT_SHARE

    kept = [
        token
        for token in question.split()
        if not (stem := content_words(token)) or not (subject(stem) or stem <= named)
    ]
    asked = " ".join(kept)
    return asked if content_words(asked) else question


@runtime_checkable
class NearestChunks(Protocol):
    """A story's chunks that can also say which are nearest a text (``ask.StoryChunks``)."""

    def __call__(self, story_id: str) -> Sequence[Retrieved]: ...
    def nearest(self, story_id: str, text: str, n: int) -> list[str] | None: ...


def to_read(
    question: str,
    story_id: str,
    chunks: Sequence[R],
    source: object,
    n: int,
    seen: Collection[str] = (),
) -> list[R]:
    """The ``n`` chunks of the story to read beyond the retrieved ones, less those already
    ``seen`` (by chunk id): those whose stored vectors are nearest what is asked
    (``asked_part``) where the source can tell, else those holding most of the asked-for
    words (``on_question``). On the project's answerable questions, the four nearest hold
    the evidence for 74 in 100 against 59 for the words."""
    ids = (
        source.nearest(story_id, asked_part(question, chunks), n)
        if isinstance(source, NearestChunks)
        else None
    )
    if ids:  # None: no dense index; empty: its vectors are not (yet) there
        wanted = set(ids)
        picked = [c for c in chunks if c.chunk_id in wanted]  # in the story's order
    else:
        picked = on_question(question, chunks, n)
    return [c for c in picked if c.chunk_id not in seen]


def read_whole(
    question: str,
    story: StorySupport,
    passages: Sequence[Retrieved],
    source: Callable[[str], Sequence[Retrieved]],
    embedder: Embedder,
) -> StorySupport:
    """The story's support with its sentences taken from its retrieved passages and the
    chunks of it nearest what is asked (``to_read``); ``source`` gives a story's chunks."""
    chunks = source(story.story_id)
    retrieved = [passages[i] for i in story.passages]
    seen = {p.chunk_id for p in retrieved}
    extra = to_read(question, story.story_id, chunks, source, READ_CHUNKS, seen)
    read = [*retrieved, *extra]
    asked = asked_part(question, chunks or retrieved)
    sentences = sorted(score_sentences(asked, read, embedder), key=lambda s: (-s.score, s.order))
    if not sentences:
        return story
    return replace(story, sentences=tuple(sentences), best=sentences[0].score)


def _said_once(sentences: Sequence[Sentence]) -> list[Sentence]:
    """The sentences, best first, each text once: a post carried by two feeds is one story
    with the same sentences twice."""
    seen: set[str] = set()
    once = []
    for s in sentences:
        key = " ".join(s.text.lower().split())
        if key not in seen:
            seen.add(key)
            once.append(s)
    return once


def weigh(
    question: str,
    passages: Sequence[Retrieved],
    embedder: Embedder,
    chunks: Callable[[str], Sequence[Retrieved]] | None = None,
    threshold: float | None = None,
) -> Support:
    """The best-supported story, its excerpts, and whether the corpus covers the question.
    ``chunks`` gives a story's every chunk: the chosen story is then read beyond the
    passages retrieval found for it."""
    sentences = score_sentences(question, passages, embedder)
    stories = story_support(question, passages, sentences)
    if not stories:
        return Support(None)
    first = stories[0]
    if chunks is not None:
        first = read_whole(question, first, passages, chunks, embedder)
        stories = [first, *stories[1:]]
    excerpts = tuple(
        sorted(
            (
                s
                for s in _said_once(first.sentences)[:EXCERPTS]
                if s.score >= first.best - EXCERPT_SLACK
            ),
            key=lambda s: s.order,
        )
    )
    values = signals(question, passages, stories, excerpts)
    weights, bias, own_threshold = decision_for(_kind_of(passages, first))
    p = probability(values, weights, bias)
    threshold = own_threshold if threshold is None else threshold
    also = next(
        (
            s
            for s in stories[1:]
            if s.best >= first.best - ALSO_WITHIN and s.coverage >= first.coverage
        ),
        None,
    )
    return Support(
        first,
        excerpts,
        also,
        also.sentences[0] if also else None,
        values,
        p,
        p >= threshold,
    )
