"""Answers without an LLM: the story that answers is cited first, excerpts are clean prose,
"not covered" when the paper is not there, the same answer every time.

The corpus tests index a few real Qasper papers (../shared/fixtures) with the real
embedding model, Chroma and SQLite; the questions come from the project's own sets in
tests/data (built by bench/answers.py --build-sets).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.state import SQLiteStateStore
from tests.conftest import SHARED_FIXTURES, TRACKER_COMMAND
from tests.openai_server import OpenAIServer
from tracker.answer.ask import Filters
from tracker.answer.llm import NOT_ANSWERED
from tracker.answer.quotable import clean_sentence, quotable, sentences_of
from tracker.answer.words import content_words
from tracker.app import Tracker
from tracker.models import Item, ItemKind, Validators
from tracker.settings import Settings

DATA = Path(__file__).parent / "data"
QASPER = SHARED_FIXTURES / "eval" / "qasper" / "corpus.jsonl"
#: Four papers indexed; the fifth is the one a question asks about in vain.
INDEXED = (
    "paper_308c4a183c57",  # language identification for South African languages
    "paper_b70353072c77",  # monolingual data for neural machine translation
    "paper_c38b4011dcc3",  # Turkish sentiment analysis
    "paper_62dca91ccf83",  # clinical text structuring
)
ABSENT = "paper_94f9cb692728"  # judgment prediction for civil cases


def test_a_heading_is_never_an_excerpt() -> None:
    text = (
        "Data Analysis ::: Speaker Diversity\n"
        "The corpus was read by 1,200 speakers from 40 countries over two years.\n"
        "Results\n"
        "Table 2: Accuracy of the models on the test set.\n"
        "We compare our models against two baselines.\n"
        "87.2 91.4 88.0 76.5 80.1 79.9 85.5 86.0"
    )
    assert sentences_of(text) == [
        "The corpus was read by 1,200 speakers from 40 countries over two years."
    ]


def test_reference_markers_are_cleaned_out_of_excerpts() -> None:
    cleaned = clean_sentence("They use the DSL 2015 corpus BIBREF3, BIBREF4 as in FIGREF2.")
    assert cleaned == "They use the DSL 2015 corpus as in."
    assert "REF" not in " ".join(sentences_of("Prior work BIBREF0 studied this task at length."))


def test_boilerplate_about_the_paper_is_not_an_answer() -> None:
    assert not quotable("The rest of this paper is organized as follows.")
    assert not quotable("This work is licensed under a Creative Commons Attribution License.")
    assert quotable("The copy technique adds target sentences as pseudo sources for training.")


def test_question_words_leave_out_what_every_question_says() -> None:
    assert content_words("What datasets are used in this paper?") == {"dataset"}


# --- over real papers --------------------------------------------------------------------


def questions(name: str, paper: str) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / f"answers_{name}.jsonl").open()]
    return [r for r in rows if r["paper"] == paper]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    if not QASPER.is_file():
        pytest.skip(f"the shared Qasper set is not at {QASPER}")
    papers = {d["_id"]: d["text"] for d in map(json.loads, QASPER.open()) if d["_id"] in INDEXED}
    home = tmp_path_factory.mktemp("answers")
    settings = Settings(home=home, sources_path=home / "sources.yaml")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    items = [
        Item(
            id=paper,
            source="qasper",
            source_kind="qasper",
            kind=ItemKind.PAPER,
            url=f"https://papers.example/{paper}",
            title="",
            text=papers[paper],
            published=now,
        )
        for paper in INDEXED
    ]
    with SQLiteStateStore(settings.state_db) as state:
        state.save_success("qasper", "qasper", items, Validators(), "ok", now)
        tracker = Tracker(settings, state)
        tracker.process()
        yield tracker


@pytest.mark.realworld
def test_a_question_answered_in_one_paper_cites_that_paper_first(corpus: Tracker) -> None:
    for paper in INDEXED[:2]:
        for case in questions("answerable", paper)[:2]:
            answer, _ = corpus.ask(case["question"], Filters())
            assert answer.found, case["question"]
            assert answer.citations[0].url == f"https://papers.example/{paper}"
            assert "[1]" in answer.text


@pytest.mark.realworld
def test_a_question_about_a_paper_not_in_the_corpus_is_not_covered(corpus: Tracker) -> None:
    cases = questions("out_of_corpus", ABSENT)
    refused = [not corpus.ask(c["question"], Filters())[0].found for c in cases]
    assert sum(refused) >= 0.75 * len(cases) and len(cases) >= 3


@pytest.mark.realworld
def test_the_same_question_twice_gives_the_same_answer(corpus: Tracker) -> None:
    question = questions("answerable", INDEXED[2])[0]["question"]
    first, _ = corpus.ask(question, Filters())
    again, _ = corpus.ask(question, Filters())
    assert first.to_json() == again.to_json()


@pytest.mark.realworld
def test_the_same_question_in_new_processes_gives_the_same_answer(corpus: Tracker) -> None:
    """Each ``tracker ask`` is a new process with its own string hashing (PYTHONHASHSEED):
    nothing hash-ordered may reach the answer. Over one stored index the answer is the
    same; only building the index afresh may move a near-tie (Chroma's HNSW graph differs
    build to build), which is why bench/answers.py can vary by a question run to run."""
    question = questions("answerable", INDEXED[3])[0]["question"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TRACKER_"))}
    env["TRACKER_HOME"] = str(corpus.settings.home)
    outputs = [
        subprocess.run(
            [TRACKER_COMMAND, "ask", question, "--json"],
            capture_output=True,
            text=True,
            env={**env, "PYTHONHASHSEED": seed},
            timeout=180,
        )
        for seed in ("1", "2")
    ]
    assert [o.returncode for o in outputs] == [0, 0], outputs[0].stderr
    answers = [json.loads(o.stdout) for o in outputs]
    assert answers[0]["citations"], "the question is answered"
    assert answers[0] == answers[1]
    in_process, _ = corpus.ask(question, Filters())
    assert in_process.to_json() == answers[0]


@pytest.mark.realworld
def test_excerpts_over_real_papers_are_prose(corpus: Tracker) -> None:
    for paper in INDEXED:
        case = questions("answerable", paper)[0]
        answer, _ = corpus.ask(case["question"], Filters())
        quoted = [line for line in answer.text.splitlines() if line.startswith("> ")]
        assert all(":::" not in q and "REF" not in q for q in quoted)
        assert all(q.rstrip(" [12]").endswith((".", "!", "?", '"', "'", ")")) for q in quoted)


def test_in_topic_set_removes_every_line_that_names_part_of_the_answer() -> None:
    from bench.answers import evidence_lines

    text = (
        "Introduction\n"
        "We compare against DSL 2015, DSL 2017 and the NCHLT text corpora.\n"
        "The NCHLT text corpora holds 3500 training samples per language.\n"
        "Results on DSL 2017 are in the table.\n"
        "Language identification matters for South African languages.\n"
        "The stacked classifier first predicts the language group.\n"
        "A lexicon then picks the language within the group.\n"
        "Its errors fall mostly between closely related languages."
    )
    answer = "DSL 2015, DSL 2017, NCHLT text corpora"
    question = "Which datasets are employed for South African languages LID?"
    assert evidence_lines(text, answer, question) == [1, 2, 3]
    assert evidence_lines(text, "Yes", question) == []


# --- the LLM path over the same sets -------------------------------------------------------

_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] .* \((\S+)\)$", re.M)


def reader(paper_of: dict[str, str], invent: bool = False) -> Callable[[dict], str]:
    """A stand-in for a model that reads honestly (no model runs here): given the prompt
    ``tracker.answer.ask`` sends, it answers from a passage of the question's own paper, quoting
    its first sentence with that passage's number, and says the sources do not answer when
    no such passage was sent. With ``invent``, it cites passage 1 for a claim no passage
    makes. What it tests is the path around the model: the prompt, the citations' mapping
    to stories, the "does not answer" reply, the grounding check and the fallback."""

    def reply(request: dict) -> str:
        user = request["messages"][1]["content"]
        question = user.split("\n", 1)[0].removeprefix("Question: ")
        if invent:
            return "The authors trained on a billion tweets scraped from Mars rovers [1]."
        heads = list(_PASSAGE_HEAD.finditer(user))
        for n, head in enumerate(heads):
            if head.group(2) == paper_of[question]:
                end = heads[n + 1].start() if n + 1 < len(heads) else user.index("</passages>")
                body = user[head.end() : end].strip()
                sentence = next(s for s in sentences_of(body) if s)
                return f"{sentence} [{head.group(1)}]"
        return NOT_ANSWERED

    return reply


@contextmanager
def answering_with(corpus: Tracker, reply: Callable[[dict], str]) -> Iterator[OpenAIServer]:
    """``corpus`` with a chat model configured: a server on loopback answering ``reply``."""
    kept = corpus.settings
    with OpenAIServer(reply) as chat:
        corpus.settings = replace(kept, summary_model="reader", openai_base_url=chat.base_url)
        try:
            yield chat
        finally:
            corpus.settings = kept


def url_of(paper: str) -> str:
    return f"https://papers.example/{paper}"


@pytest.mark.realworld
def test_through_the_llm_path_the_sets_are_answered_from_the_papers_passages(
    corpus: Tracker,
) -> None:
    answerable = [c for p in INDEXED for c in questions("answerable", p)]
    absent = questions("out_of_corpus", ABSENT)
    paper_of = {c["question"]: url_of(c["paper"]) for c in answerable + absent}
    with answering_with(corpus, reader(paper_of)) as chat:
        results = [(c, *corpus.ask(c["question"], Filters())) for c in answerable + absent]
    assert len(chat.requests) == len(results)  # one call per question, no retries
    given = 0
    for case, answer, passages in results:
        assert answer.mode == "llm" and answer.fallback_reason is None
        if paper_of[case["question"]] in {p.url for p in passages}:
            given += 1
            assert answer.found and answer.citations[0].url == url_of(case["paper"])
            assert "[1]" in answer.text and "[2]" not in answer.text  # one source: the paper
        else:
            assert not answer.found and answer.citations == () and answer.text == NOT_ANSWERED
    # the question's paper reaches the model for most answerable questions, never for
    # the papers that are not there
    assert given >= 0.75 * len(answerable)
    assert all(not a.found for c, a, _ in results if c["paper"] == ABSENT) and len(absent) >= 3


@pytest.mark.realworld
def test_an_llm_answer_no_passage_supports_falls_back_to_the_excerpts_decision(
    corpus: Tracker,
) -> None:
    absent = questions("out_of_corpus", ABSENT)
    answerable = questions("answerable", INDEXED[0])[:2]
    with answering_with(corpus, reader({}, invent=True)):
        refused = [corpus.ask(c["question"], Filters())[0] for c in absent]
        answered = [corpus.ask(c["question"], Filters())[0] for c in answerable]
    for answer in refused + answered:
        assert answer.mode == "extractive" and "Mars" not in answer.text
        assert answer.fallback_reason == (
            "no sentence of the LLM's answer was supported by its sources"
        )
    # the excerpts then decide as without an LLM: not covered for the absent paper,
    # the question's paper first otherwise
    assert sum(not a.found for a in refused) >= 0.75 * len(refused)
    assert all(a.found and a.citations[0].url == url_of(INDEXED[0]) for a in answered)


# --- what is read beyond the passages retrieval found ----------------------------------------


@pytest.mark.realworld
def test_a_storys_chunks_nearest_a_text_come_from_the_vector_store(corpus: Tracker) -> None:
    from tracker.answer.ask import StoryChunks

    chunks = StoryChunks(corpus.lexical(), Filters(), corpus.vectors, corpus.embedder)
    story = next(iter(corpus.lexical().by_story))
    own = chunks(story)
    assert len(own) > 3
    for chunk in own[1:3]:
        nearest = chunks.nearest(story, chunk.text, 3)
        assert nearest is not None and nearest[0] == chunk.chunk_id
        assert {c.chunk_id for c in own} >= set(nearest)
    # the filters still apply: no chunk of a paper is a blog post's
    posts = StoryChunks(corpus.lexical(), Filters(kind="post"), corpus.vectors, corpus.embedder)
    assert posts.nearest(story, own[1].text, 3) == [] and posts(story) == []


def evidence_of(case: dict) -> set[str]:
    """The quotable sentences of the lines the in-topic set removes for this question."""
    lines = {d["_id"]: d["text"] for d in map(json.loads, QASPER.open())}[case["paper"]]
    lines = lines.split("\n")
    return {s for n in case["remove_lines"] for s in sentences_of(lines[n])}


@pytest.mark.realworld
def test_the_llm_is_sent_the_evidence_more_often_than_retrieval_finds_it(
    corpus: Tracker,
) -> None:
    cases = [c for p in INDEXED for c in questions("unanswerable", p)]
    answerable = {c["id"]: c for p in INDEXED for c in questions("answerable", p)}
    paper_of = {answerable[c["id"]]["question"]: url_of(c["paper"]) for c in cases}
    with answering_with(corpus, reader(paper_of)) as chat:
        results = [corpus.ask(answerable[c["id"]]["question"], Filters()) for c in cases]
    retrieved = sent = 0
    for case, (_, passages), request in zip(cases, results, chat.requests, strict=True):
        evidence = evidence_of(case)
        found = any(evidence & set(sentences_of(p.text, p.title)) for p in passages)
        given = bool(evidence & set(sentences_of(request.body["messages"][1]["content"])))
        assert given or not found  # what retrieval found is always sent
        retrieved, sent = retrieved + found, sent + given
    assert len(cases) >= 10 and sent > retrieved
