"""Chunking: every chunk fits the budget, nothing is lost, the title leads."""

from __future__ import annotations

from tracker.understand.chunking import chunk_text, estimate_tokens


def words(text: str) -> list[str]:
    return text.split()


def test_a_short_text_is_one_chunk_led_by_the_title() -> None:
    (chunk,) = chunk_text("Speculative decoding", "Drafts are verified in one pass.")
    assert chunk.text == "Speculative decoding\n\nDrafts are verified in one pass."
    assert chunk.index == 0


def test_long_text_is_split_within_budget_without_losing_words() -> None:
    paragraphs = [
        " ".join(f"Sentence {p}-{s} says something useful." for s in range(30)) for p in range(5)
    ]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text("Title", text, budget=60)
    assert len(chunks) > 5
    assert all(estimate_tokens(c.text) <= 60 for c in chunks)
    assert words(" ".join(c.text for c in chunks)) == words("Title " + text)


def test_a_giant_sentence_is_cut_at_word_boundaries() -> None:
    text = " ".join(["token"] * 1000)
    chunks = chunk_text("T", text, budget=50)
    assert all(estimate_tokens(c.text) <= 50 for c in chunks)
    assert sum(c.text.count("token") for c in chunks) == 1000


def test_the_same_text_has_the_same_hash() -> None:
    a = chunk_text("T", "Same words.")[0]
    b = chunk_text("T", "Same   words.")[0]
    assert a.content_hash == b.content_hash
    assert a.content_hash != chunk_text("T", "Other words.")[0].content_hash
