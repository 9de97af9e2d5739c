"""The tracker's services, wired from Settings: what the CLI (and later the bot) call.

Heavy parts (the embedding model, Chroma) are opened on first use, so
``tracker stats`` stays instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cached_property

import numpy as np

from storage.chunks import ChunkStore
from storage.embedding_cache import EmbeddingCache
from storage.feedback import SQLiteFeedbackStore
from storage.outbox import DigestOutbox
from storage.queue import ProcessingQueue
from storage.state import SQLiteStateStore
from storage.stories import SQLiteStoryStore
from storage.vectors import ChromaVectorStore
from tracker.answer.ask import (
    ANSWER_N,
    ANSWER_PER_STORY,
    Answer,
    Filters,
    LexicalIndex,
    Passage,
    StoryChunks,
    nothing_found,
    retrieve,
)
from tracker.answer.llm import answer
from tracker.config import Config
from tracker.config.kinds import links_last
from tracker.deliver.digest import fresh, select
from tracker.deliver.headline import LLMHeadline, extractive_headline
from tracker.deliver.routes import Route, routes
from tracker.embedder import Embedder
from tracker.llm.chat import OpenAIChat
from tracker.llm.openai_compat import llm_configured
from tracker.models import DEFAULT_ROUTE, Digest, Sent, Story
from tracker.settings import Settings
from tracker.times import utcnow
from tracker.understand.embed import make_embedder
from tracker.understand.embedding_function import TrackerEmbeddingFunction
from tracker.understand.feedback import feedback_signal
from tracker.understand.process import Pipeline, ProcessReport
from tracker.understand.rank import Ranked, freshness, rank
from tracker.understand.summary import Summariser
from tracker.understand.summary.choose import make_summariser


class Tracker:
    def __init__(
        self, settings: Settings, state: SQLiteStateStore, embedder: Embedder | None = None
    ):
        """``embedder``: one already loaded (the bot's query side shares the job side's)."""
        if embedder is not None:
            self.__dict__["embedder"] = embedder
        self.settings = settings
        self.state = state
        self.stories = SQLiteStoryStore(state)
        self.queue = ProcessingQueue(state, links_last=links_last())
        self.chunks = ChunkStore(state)
        self._lexical: tuple[tuple[int, int], LexicalIndex] | None = None

    @cached_property
    def embedder(self) -> Embedder:
        return make_embedder(
            self.settings.embedding_model,
            self.settings.openai_api_key,
            self.settings.openai_base_url,
        )

    @cached_property
    def vectors(self) -> ChromaVectorStore:
        return self._open_vectors()

    def _open_vectors(self, rebuild: bool = False) -> ChromaVectorStore:
        return ChromaVectorStore(
            self.embedder.name,
            self.embedder.dimensions,
            # An embedder without a spec (a test's) cannot be rebuilt in another process:
            # Chroma is then given no function rather than one it cannot remember.
            TrackerEmbeddingFunction(self.embedder)
            if isinstance(getattr(self.embedder, "spec", None), str)
            else None,
            path=self.settings.chroma_path,
            url=self.settings.chroma_url,
            rebuild=rebuild,
        )

    @cached_property
    def summariser(self) -> Summariser:
        return make_summariser(
            self.embedder,
            self.settings.summary_model,
            self.settings.openai_api_key,
            self.settings.openai_base_url,
        )

    def process(
        self,
        reembed: bool = False,
        now: Callable[[], datetime] = utcnow,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ProcessReport:
        """Turn new and changed items into chunks, stories and summaries."""
        if reembed:
            self._reset_vectors()
        elif not ProcessingQueue(self.state, now).has_work():
            return ProcessReport()  # without loading the model or opening Chroma
        pipeline = Pipeline(
            stories=self.stories,
            queue=self.queue,
            cache=EmbeddingCache(self.state),
            chunks=self.chunks,
            vectors=self.vectors,
            embedder=self.embedder,
            summariser=self.summariser,
            window=timedelta(days=self.settings.dedupe_days),
            now=now,
            on_progress=on_progress,
        )
        return pipeline.run()

    def _reset_vectors(self) -> None:
        # Forgotten first: a run killed between the two steps re-embeds everything next
        # time, rather than leaving the vectors empty with every item marked processed.
        self.queue.forget_processing()
        self.__dict__["vectors"] = self._open_vectors(rebuild=True)

    def ranked(
        self,
        config: Config,
        since: timedelta | None = None,
        now: datetime | None = None,
        only: Sequence[Story] | None = None,
    ) -> list[Ranked]:
        """Stories whose news happened within ``since`` (or just ``only``), best first, with their
        score parts. Readers' votes (on any story, however old) adjust the ranking: see
        tracker.understand.feedback.
        """
        now = now or utcnow()
        if only is not None:
            stories = list(only)
        else:
            # Stories whose news happened within ``since`` (``freshness``: a two-week-old
            # post collected today is not today's); stored ones changed since are a superset.
            stories = self.stories.stories(now - since if since else None)
            if since is not None:
                stories = [s for s in stories if freshness(s) >= now - since]
        vectors = self.stories.vectors([s.id for s in stories], self.embedder.name)
        interests = self.interest_vectors(config)
        weights = {s.name: s.weight for s in config.sources}
        votes = SQLiteFeedbackStore(self.state).votes()
        signal = None
        if votes:
            known = {s.id: s for s in stories}
            voted = [known.get(i) or self.stories.story(i) for i in votes]
            signal = feedback_signal(
                votes,
                [s for s in voted if s is not None],
                self.stories.vectors(list(votes), self.embedder.name),
            )
        return rank(stories, now, vectors, interests, weights, feedback=signal)

    # --- the digest: one path for the CLI, tracker serve, /digest and /why ------------

    def digest_context(
        self, config: Config, now: datetime, window: timedelta | None = None
    ) -> list[Ranked]:
        """The stories a digest chooses from, ranked: those changed within ``digest.max_age``
        (or ``window`` when longer). Every route's digest, its preview and /why all rank in
        this context, so a position /why reports is the one the digest used."""
        span = max(config.digest.max_age, window or timedelta(0))
        # Only news is ranked: backlog would take places (and /why positions) that the
        # digest never gives it, and push fresh stories of its kind down.
        candidates = [s for s in self.stories.stories(now - span) if fresh(s, now, span)]
        return self.ranked(config, now=now, only=candidates)

    def digest(
        self,
        config: Config,
        now: datetime,
        since: timedelta | None = None,
        closing: str | None = None,
        route: Route | None = None,
    ) -> Digest:
        """The digest of ``route`` (the first when None) as of ``now``: what it takes that is
        new or updated since its last digest sent, and fresh. With ``since``, a preview of
        everything of that span instead, sent or not. ``closing`` ends it (the first digest
        says when the next one comes)."""
        route = route or routes(config)[0]
        sent, last = DigestOutbox(self.state).sent(route.name)
        max_age = route.max_age
        if since is not None:
            sent, last, max_age = {}, now - since, max(max_age, since)
        ranked = [r for r in self.digest_context(config, now, max_age) if route.takes(r.story)]
        digest = select(ranked, Sent(sent, last), now, route.size, config.stack, max_age)
        title = None if route.name == DEFAULT_ROUTE else route.name
        if title is not None and route.weekday is not None and "weekly" not in title.casefold():
            title += ", weekly"
        unreachable = None
        if digest.quiet and last is not None:
            # Every source tried since the last digest failed: say so, not "a quiet day".
            states = self.state.source_states().values()
            newest = max((s.last_success for s in states if s.last_success), default=None)
            failed = any(s.last_error_at and s.last_error_at >= last for s in states)
            if newest is not None and newest < last and failed:
                unreachable = newest
        return replace(
            digest,
            closing=closing,
            headline=self.headline(digest),
            title=title,
            unreachable_since=unreachable,
        )

    def headline(self, digest: Digest) -> str | None:
        """What the digest opens with: an LLM's overview when one is configured (checked
        against the digest's stories), else plain lines."""
        chat = self._chat(max_tokens=200)
        return LLMHeadline(chat)(digest) if chat is not None else extractive_headline(digest)

    def lexical(self) -> LexicalIndex:
        """The BM25 index, rebuilt only when the chunks changed since it was built."""
        version = self.chunks.version()
        if self._lexical is None or self._lexical[0] != version:
            self._lexical = (version, LexicalIndex(self.chunks.rows()))
        return self._lexical[1]

    def ask(
        self, question: str, filters: Filters, n: int = ANSWER_N
    ) -> tuple[Answer, list[Passage]]:
        """An answer from the corpus: by the LLM when one is configured (checked against
        its passages, falling back to excerpts on any failure), else cited excerpts."""
        passages = retrieve(
            question,
            filters,
            self.lexical(),
            self.vectors,
            self.embedder,
            n=n,
            per_story=ANSWER_PER_STORY,
        )
        if not passages:
            known = sorted({s.name for s in self.state.stats()})
            stored, indexed = self.state.count_items(), self.chunks.version()[0]
            answered = nothing_found(filters, known, stored == 0, indexed == 0)
            return answered, passages
        chunks = StoryChunks(self.lexical(), filters, self.vectors, self.embedder)
        answered = answer(question, passages, self.embedder, chunks, self._chat(max_tokens=400))
        return self._cite_stories(answered), passages

    def _chat(self, max_tokens: int) -> OpenAIChat | None:
        """The configured chat model, or None when there is none (the offline default)."""
        s = self.settings
        if s.summary_model is None or not llm_configured(
            s.summary_model, s.openai_api_key, s.openai_base_url
        ):
            return None
        return OpenAIChat(
            s.summary_model, s.openai_api_key, s.openai_base_url, max_tokens=max_tokens
        )

    def _cite_stories(self, answer: Answer) -> Answer:
        """A citation names the member that says it, and its story's title where that
        differs (the release a line comes from, inside a story titled after the newest)."""
        cited = []
        for c in answer.citations:
            story = self.stories.story(c.story_id)
            differs = story is not None and story.title.strip() != c.title.strip()
            cited.append(replace(c, story_title=story.title) if story and differs else c)
        return replace(answer, citations=tuple(cited))

    def interest_vectors(self, config: Config) -> np.ndarray | None:
        if not config.interests:
            return None
        return self.embedder.embed(config.interests)


@contextmanager
def open_tracker(settings: Settings) -> Iterator[Tracker]:
    with SQLiteStateStore(settings.state_db) as state:
        yield Tracker(settings, state)
