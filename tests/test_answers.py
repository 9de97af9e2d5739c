"""Answers without an LLM: the story that answers is cited first, excerpts are clean prose,
"not covered" when the paper is not there, the same answer every time.

The corpus tests index a few real Qasper papers (../shared/fixtures) with the real
embedding model, Chroma and SQLite; the questions come from the project's own sets in
tests/data (built by bench/answers.py --build-sets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.state import SQLiteStateStore
from tests.conftest import SHARED_FIXTURES
from tracker.app import Tracker
from tracker.ask import Filters
from tracker.models import Item, ItemKind, Validators
from tracker.settings import Settings
from tracker.support import clean_sentence, content_words, quotable, sentences_of

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
