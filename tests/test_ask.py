"""Asking the corpus: hybrid retrieval with filters, fusion, a per-story cap, cited excerpts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tracker.ask import Filters, LexicalIndex, Passage, cap_per_story, fuse
from tracker.cli import main


def row(
    i: int,
    text: str,
    kind: str = "post",
    source: str = "blog",
    ts: int = 1_700_000_000,
    story: str | None = None,
) -> dict:
    return {
        "id": f"c{i}",
        "story_id": story or f"s{i}",
        "kind": kind,
        "source": source,
        "published_ts": ts,
        "title": f"T{i}",
        "url": f"https://x.example/{i}",
        "text": text,
    }


def test_fusion_rewards_agreement_between_rankings() -> None:
    fused = dict(fuse({"bm25": ["a", "b", "c"], "dense": ["b", "d", "a"]}))
    assert max(fused, key=fused.__getitem__) in ("a", "b")
    assert fused["b"] > fused["c"] and fused["a"] > fused["d"]


def test_lexical_hits_with_no_matching_word_are_dropped() -> None:
    index = LexicalIndex([row(1, "speculative decoding with drafts"), row(2, "protein folding")])
    hits = index.search("speculative decoding", 10, Filters())
    assert [index.rows[i]["id"] for i, _ in hits] == ["c1"]


def test_filters_apply_to_kind_source_and_time() -> None:
    rows = [
        row(1, "llm serving", kind="paper"),
        row(2, "llm serving", source="news"),
        row(3, "llm serving", ts=1_800_000_000),
    ]
    index = LexicalIndex(rows)

    def ids(f):
        return sorted(index.rows[i]["id"] for i, _ in index.search("llm serving", 10, f))

    assert ids(Filters(kind="paper")) == ["c1"]
    assert ids(Filters(source="news")) == ["c2"]
    assert ids(Filters(since=datetime.fromtimestamp(1_750_000_000, UTC))) == ["c3"]
    where = Filters(kind="paper", since=datetime.fromtimestamp(10, UTC)).chroma_where()
    assert where == {"$and": [{"kind": "paper"}, {"published_ts": {"$gte": 10}}]}


def test_one_story_cannot_fill_every_slot() -> None:
    passages = [Passage(f"c{i}", "long-post", "T", "u", "s", "post", "x", 1.0) for i in range(5)]
    passages.append(Passage("other", "s2", "T", "u", "s", "post", "x", 0.5))
    assert [p.chunk_id for p in cap_per_story(passages, 2, 8)] == ["c0", "c1", "other"]


def test_ask_answers_from_the_corpus_with_citations(world, capsys) -> None:
    assert main(["collect"]) == 0
    capsys.readouterr()
    assert main(["ask", "How much faster is decoding with a draft model?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["mode"] == "extractive" and answer["found"] is True
    assert answer["answer"].startswith("Excerpts from the sources:")
    assert "[1]" in answer["answer"]
    assert any(c["url"] == "https://arxiv.org/abs/2411.01234" for c in answer["citations"])
    assert {c["n"] for c in answer["citations"]} == set(range(1, len(answer["citations"]) + 1))


def test_ask_says_plainly_when_the_corpus_has_no_answer(world, capsys) -> None:
    main(["collect"])
    capsys.readouterr()
    assert main(["ask", "What is the recipe for sourdough bread?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["found"] is False and answer["citations"] == []


def test_ask_filters_by_kind(world, capsys) -> None:
    main(["collect"])
    capsys.readouterr()
    assert main(["ask", "What changed in the release?", "--kind", "release", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert all("/releases/tag/" in c["url"] for c in answer["citations"])
