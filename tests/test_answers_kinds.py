"""The release and thread sets through the LLM path, against a stand-in reader on loopback.

What it tests is the plumbing for the kinds beyond papers (the prompt carries release notes
and shared links, a citation maps back to the release or thread whose passage was quoted,
"does not answer" is honoured), not a model's quality: no model runs here. The corpus is
the project's own fixtures (``tests/data/releases``, ``tests/data/threads``), read by
tracker's parsers as the benchmark reads them (``bench/story_kinds.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bench.story_kinds import DATA, _release_docs, _thread_docs, doc_id
from storage.state import SQLiteStateStore
from tests.openai_server import OpenAIServer
from tracker.answer.ask import Filters
from tracker.answer.llm import NOT_ANSWERED
from tracker.app import Tracker
from tracker.models import Item, ItemKind, Validators
from tracker.settings import Settings

_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] .* \((\S+)\)$", re.M)


def cases(kind: str, name: str) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / f"answers_{kind}.jsonl").open()]
    local = [
        r for r in rows if r["set"] == name and not str(r.get("fixture", "")).startswith("blogs/")
    ]
    return [r for r in local if "fixture" in r]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    items, seen = [], set()
    for kind, docs in ((ItemKind.RELEASE, _release_docs()), (ItemKind.POST, _thread_docs())):
        for fixture, link, title, text, extra, authors in docs:
            key = doc_id(fixture, link)
            if key in seen:
                continue
            seen.add(key)
            items.append(
                Item(
                    key,
                    "fixtures",
                    "fixtures",
                    kind,
                    link,
                    title,
                    text,
                    authors=authors,
                    published=now,
                    extra=dict(extra),
                )
            )
    home = tmp_path_factory.mktemp("kinds")
    settings = Settings(home=home, sources_path=home / "sources.yaml")
    with SQLiteStateStore(settings.state_db) as state:
        state.save_success("fixtures", "fixtures", items, Validators(), "ok", now)
        tracker = Tracker(settings, state)
        tracker.process()
        yield tracker


def reader(link_of: dict[str, str], said: dict[str, str]) -> Callable[[dict], str]:
    """Answers from the passage of the question's own item, saying the line that holds the
    answer (or, where the passage sent does not hold it, its first line) with that
    passage's number; says the sources do not answer when no such passage was sent."""

    def reply(request: dict) -> str:
        user = request["messages"][1]["content"]
        question = user.split("\n", 1)[0].removeprefix("Question: ")
        heads = list(_PASSAGE_HEAD.finditer(user))
        for n, head in enumerate(heads):
            if head.group(2) == link_of[question]:
                end = heads[n + 1].start() if n + 1 < len(heads) else user.index("</passages>")
                lines = [x.strip() for x in user[head.end() : end].splitlines() if x.strip()]
                answer = " ".join(said[question].split())
                line = next((x for x in lines if answer in " ".join(x.split())), lines[0])
                return f"{line} [{head.group(1)}]"
        return NOT_ANSWERED

    return reply


@pytest.mark.parametrize("kind", ["releases", "threads"])
def test_through_the_llm_path_a_kinds_questions_cite_the_item_that_answers(
    corpus: Tracker, kind: str
) -> None:
    answerable = cases(kind, "answerable")
    assert len(answerable) >= 20
    link_of = {c["question"]: c["link"] for c in answerable}
    said = {c["question"]: c["answer"] for c in answerable}
    kept = corpus.settings
    with OpenAIServer(reader(link_of, said)) as chat:
        corpus.settings = replace(kept, summary_model="reader", openai_base_url=chat.base_url)
        try:
            results = [(c, *corpus.ask(c["question"], Filters())) for c in answerable]
        finally:
            corpus.settings = kept
    assert len(chat.requests) == len(results)  # one call per question, no retries
    given = 0
    for case, answer, passages in results:
        assert answer.mode == "llm", (case["question"], case["answer"], answer.fallback_reason)
        if case["link"] in {p.url for p in passages}:
            given += 1
            assert answer.found and answer.citations[0].url == case["link"]
        else:
            assert not answer.found and answer.text == NOT_ANSWERED
    assert given >= 0.75 * len(answerable)
