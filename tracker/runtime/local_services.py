"""The real ``Services``: the bot's commands answered from this machine's tracker.

Reads run on the runtime's ``queries`` worker, so a question is not stuck
behind a long collect; writes of feedback go to the ``outbox`` worker; edits of
sources.yaml run in a thread and are applied at once (not at the next poll).
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable
from datetime import datetime, timedelta

from storage.feedback import SQLiteFeedbackStore
from storage.outbox import DigestOutbox
from storage.state import SQLiteStateStore
from tracker.answer.ask import Answer, Filters, retrieve
from tracker.app import Tracker
from tracker.collect.http import is_public_host
from tracker.config import Config
from tracker.deliver.routes import route_named, routes
from tracker.errors import UserError
from tracker.follow.edit import follow, remove_source
from tracker.models import Digest, Story
from tracker.runtime import Runtime
from tracker.services import SearchHit, SourceChange, SourceHealth, Why
from tracker.understand.popularity import describe

#: /why ranks the stories of this period to give a story its place.


class LocalServices:
    def __init__(self, runtime: Runtime, is_public: Callable[[str], bool] = is_public_host):
        self.runtime = runtime
        self.is_public = is_public

    @property
    def config(self) -> Config:
        return self.runtime.config

    # --- reading ----------------------------------------------------------------------

    async def ask(self, question: str, since: timedelta | None, kind: str | None) -> Answer:
        now = self.runtime.now()
        filters = Filters(since=now - since if since else None, kind=kind)
        await self.runtime.embedder()
        answer, _ = await self.runtime.queries.run(lambda t: t.ask(question, filters))
        return answer

    async def digest_preview(self, since: timedelta | None, route: str | None = None) -> Digest:
        config = self.config
        now = self.runtime.now()
        try:
            chosen = route_named(config, route)
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None

        def preview(t: Tracker) -> Digest:
            return t.digest(config, now, since=since, route=chosen)

        await self.runtime.embedder()
        return await self.runtime.queries.run(preview)

    async def digest_routes(self) -> list[str]:
        return [r.name for r in routes(self.config)]

    async def search(self, query: str, n: int = 5) -> list[SearchHit]:
        if not query.strip():
            raise UserError("Give me some words to search for.")
        await self.runtime.embedder()

        def find(t: Tracker) -> list[SearchHit]:
            passages = retrieve(query, Filters(), t.lexical(), t.vectors, t.embedder, n=n * 3)
            hits: list[SearchHit] = []
            for story_id in dict.fromkeys(p.story_id for p in passages):
                story = t.stories.story(story_id)
                if story is not None:
                    hits.append(_hit(story))
                if len(hits) == n:
                    break
            return hits

        return await self.runtime.queries.run(find)

    async def sources(self) -> list[SourceHealth]:
        config = self.config
        now = self.runtime.now()
        states = await self.runtime.queries.run(lambda t: t.state.source_states())
        out = []
        for source in config.sources:
            state = states.get(source.name)
            out.append(
                SourceHealth(
                    name=source.name,
                    kind=source.kind,
                    enabled=source.enabled,
                    target=_target(source),
                    last_success=state.last_success if state else None,
                    last_error=state.last_error if state and state.consecutive_failures else None,
                    last_error_at=state.last_error_at if state else None,
                    consecutive_failures=state.consecutive_failures if state else 0,
                    backing_off=bool(state and state.backing_off(now)),
                    retry_after=state.next_attempt_after if state else None,
                )
            )
        return out

    # --- changing sources.yaml ------------------------------------------------------------

    async def add_source(self, url: str, name: str | None) -> SourceChange:
        settings = self.runtime.settings
        # The same path as `tracker sources add`, in a thread (checking a host resolves it,
        # and a feed is fetched). Added from a chat: the feed is marked public_only.
        added = await asyncio.to_thread(
            follow,
            settings.sources_path,
            url,
            settings,
            name=name,
            is_public=self.is_public,
            public_only=True,
        )
        await self.runtime.reload()
        note = "; ".join(n for n in (added.note, "collecting it now") if n)
        return SourceChange(added.name, added.kind, added.target, note)

    async def remove_source(self, name: str) -> SourceChange:
        source = next((s for s in self.config.sources if s.name == name), None)
        described = await asyncio.to_thread(remove_source, self.runtime.settings.sources_path, name)
        await self.runtime.reload()
        if source is None:
            return SourceChange(name, "", "", described)
        return SourceChange(name, source.kind, _target(source), described)

    # --- why ------------------------------------------------------------------------------

    async def why(self, story: str) -> Why:
        ref = story.strip()
        message_id = _message_id(ref)
        if message_id is not None:
            found = await self.why_message(message_id)
            if found:
                return found[0]
        await self.runtime.embedder()
        config, now = self.config, self.runtime.now()

        def explain(t: Tracker) -> Why:
            chosen = t.stories.story(ref) or _by_title(t, ref)
            if chosen is None:
                raise UserError(
                    f"I know no story called “{ref[:100]}”. "
                    "Pick one from the list as you type, or use the story's link."
                )
            return _why(t, config, chosen, now)

        return await self.runtime.queries.run(explain)

    async def why_message(self, message_id: int) -> list[Why]:
        ids = await self.runtime.outbox.run(
            lambda s: DigestOutbox(s).stories_of_message(str(message_id))
        )
        if not ids:
            return []
        await self.runtime.embedder()
        config, now = self.config, self.runtime.now()

        def explain(t: Tracker) -> list[Why]:
            stories = [s for s in (t.stories.story(i) for i in ids) if s is not None]
            return [_why(t, config, s, now) for s in stories]

        return await self.runtime.queries.run(explain)

    async def story_choices(self, text: str, n: int = 25) -> list[tuple[str, str]]:
        recent = await self.runtime.outbox.run(lambda s: DigestOutbox(s).recent_stories(200))

        def choices(t: Tracker) -> list[tuple[str, str]]:
            words = text.lower().split()
            stories = [s for s in (t.stories.story(i) for i in recent) if s is not None]
            if words:
                stories = [s for s in stories if all(w in s.title.lower() for w in words)]
                if len(stories) < n:
                    seen = {s.id for s in stories}
                    stories += [s for s in t.stories.titled(words, n) if s.id not in seen]
            return [(s.title, s.id) for s in stories[:n]]

        return await self.runtime.queries.run(choices)

    # --- feedback -------------------------------------------------------------------------

    async def feedback(self, message_id: int, user_id: int, vote: int, added: bool = True) -> bool:
        now = self.runtime.now()

        def record(state: SQLiteStateStore) -> bool:
            ids = DigestOutbox(state).stories_of_message(str(message_id))
            if len(ids) != 1:
                return False  # not a digest message, or one that carries several stories
            store = SQLiteFeedbackStore(state)
            if added:
                store.vote(ids[0], str(user_id), vote, now)
            else:
                store.vote(ids[0], str(user_id), None, now, only=vote)
            return True

        return await self.runtime.outbox.run(record)


def _hit(story: Story) -> SearchHit:
    return SearchHit(
        story_id=story.id,
        title=story.title,
        url=story.url,
        kind=story.kind.value,
        summary=story.summary,
        sources=tuple(story.sources),
    )


def _target(source: object) -> str:
    for attr in ("repo", "url", "query"):
        value = getattr(source, attr, None)
        if value:
            return str(value)
    ids = getattr(source, "ids", None)
    return ", ".join(ids) if ids else ""


def _message_id(ref: str) -> int | None:
    """A message id, or the id at the end of a message link."""
    tail = ref.rstrip("/").rsplit("/", 1)[-1]
    if tail.isdigit() and 15 <= len(tail) <= 21:
        return int(tail)
    return None


def _by_title(t: Tracker, text: str) -> Story | None:
    matches = t.stories.titled(text.lower().split(), 20)
    if not matches:
        return None
    titles = [s.title.lower() for s in matches]
    best = difflib.get_close_matches(text.lower(), titles, n=1, cutoff=0.0)
    return matches[titles.index(best[0])] if best else matches[0]


def _why(t: Tracker, config: Config, story: Story, now: datetime) -> Why:
    ranked = t.digest_context(config, now)
    position = next((i for i, r in enumerate(ranked, 1) if r.story.id == story.id), None)
    if position is not None:
        entry = ranked[position - 1]
    else:  # older than the window: scored on its own
        entry = t.ranked(config, now=now, only=[story])[0]
    counts = SQLiteFeedbackStore(t.state).counts(story.id)
    return Why(
        story_id=story.id,
        title=story.title,
        url=story.url,
        score=entry.score,
        parts=dict(entry.parts),
        position=position,
        total=len(ranked),
        feedback=counts,
        engagement=describe(story.engagement),
        members=tuple(f"{m.source}: {m.joined}" for m in story.members if m.joined),
    )
