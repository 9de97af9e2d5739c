"""A digest opens with what the day was about, and never with a story it does not hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tracker.cli import main
from tracker.deliver.headline import LLMHeadline, extractive_headline, grounded_overview
from tracker.models import Digest, DigestEntry, DigestSection, ItemKind

NOW = datetime(2026, 11, 24, 8, tzinfo=UTC)


def entry(title: str, kind: ItemKind, score: float, **kw: object) -> DigestEntry:
    return DigestEntry(
        title, kind, title, "A summary.", ("src",), ("https://x",), score=score, **kw
    )  # type: ignore[arg-type]


DIGEST = Digest(
    NOW,
    None,
    (
        DigestSection(
            "Breaking changes in your stack",
            (entry("vLLM v0.7.0", ItemKind.RELEASE, 0.5, pinned=True),),
        ),
        DigestSection(
            "Papers",
            (
                entry("Faster Decoding", ItemKind.PAPER, 3.0),
                entry("Graph Folding", ItemKind.PAPER, 1.0),
            ),
        ),
        DigestSection("Posts", (entry("Serving at scale", ItemKind.POST, 2.0, update="edited"),)),
    ),
)


def test_without_an_llm_the_headline_says_what_the_digest_holds_and_what_leads() -> None:
    assert extractive_headline(DIGEST) == (
        "4 stories: 2 papers, 1 post and 1 release (1 update to stories sent before).\n"
        "Leading: “Faster Decoding”, “Serving at scale” and “Graph Folding”.\n"
        "Breaking changes in your stack: “vLLM v0.7.0”."
    )
    assert extractive_headline(Digest(NOW, None)) is None  # a quiet day has none


class Said:
    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    def complete(self, system: str, user: str) -> str:
        self.prompts.append(user)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_an_llm_overview_names_the_stories_it_cites_by_their_titles() -> None:
    chat = Said("Decoding got faster [2]. Serving at scale was the theme [4], [2]. ")
    text = LLMHeadline(chat)(DIGEST)
    assert text == (
        "Decoding got faster (“Faster Decoding”).\n"
        "Serving at scale was the theme (“Serving at scale” and “Faster Decoding”)."
    )
    assert "[1] (release) vLLM v0.7.0" in chat.prompts[0]


@pytest.mark.parametrize(
    "reply",
    [
        "A new model from a lab you follow [9].",  # a story the digest does not hold
        "Decoding got faster [2]. And GPT-7 came out.",  # a sentence that cites nothing
        "",
        RuntimeError("server down"),
    ],
)
def test_an_overview_that_is_not_grounded_in_the_digest_gives_way_to_plain_lines(reply) -> None:
    headline = LLMHeadline(Said(reply))
    assert headline(DIGEST) == extractive_headline(DIGEST)
    assert headline.fallback_reason


def test_grounding_keeps_at_most_three_sentences() -> None:
    entries = DIGEST.entries
    text = grounded_overview("One [1]. Two [2]. Three [3]. Four [4].", entries)
    assert text is not None and len(text.splitlines()) == 3


def test_tracker_digest_opens_with_its_headline(world, capsys) -> None:
    assert main(["collect"]) == 0
    capsys.readouterr()
    assert main(["digest", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "Leading: “Faster Decoding with Draft Models”" in text.split("## ")[0]


def test_with_an_llm_the_digest_opens_with_its_checked_overview(
    world, capsys, monkeypatch, openai_server
) -> None:
    assert main(["collect"]) == 0
    capsys.readouterr()
    openai_server.chat = "Speculative decoding doubled throughput [1]."
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("TRACKER_SUMMARY_MODEL", "m")
    assert main(["digest", "--dry-run", "--format", "json"]) == 0
    digest = json.loads(capsys.readouterr().out)
    first = digest["sections"][0]["entries"][0]["title"]
    assert digest["headline"] == f"Speculative decoding doubled throughput (“{first}”)."
