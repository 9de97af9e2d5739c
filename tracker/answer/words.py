"""What a question shares with a text, in words: the stems that carry meaning, how much of
a question a text covers, which words are rare enough to be what is asked, and whether a
question names a story by its headline or by who publishes it. Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+")
#: Function words and the words any question about a paper uses ("what does this paper
#: propose"): they say nothing about what is asked.
_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done during each
    either few for from further had has have having he her here hers him his how i if in
    into is it its itself just me more most my no nor not now of off on once only or other
    our ours out over own same she should so some such than that the their theirs them then
    there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours paper papers work works
    author authors propose proposed use used using uses they their based approach method
    methods model models study studies show shown report reported present presented there
    kind type types different new one two many much
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def _stem(word: str) -> str:
    """A crude stem, enough to match "features" with "feature", "tagging" with "tag" and
    "measures" with "measure" (a final e goes too: "measur" both)."""
    for suffix in ("ings", "ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if word.endswith("e") and len(word) >= 4 else word


def content_words(text: str) -> frozenset[str]:
    """Stems of the words that carry meaning (no stop words, no one- or two-letter words)."""
    return frozenset(
        _stem(w) for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS
    )


def coverage(question: frozenset[str], text: str) -> float:
    """The share of the question's content words that ``text`` contains."""
    if not question:
        return 0.0
    return len(question & content_words(text)) / len(question)


def ask_weights(question: frozenset[str], sentences: Sequence[frozenset[str]]) -> dict[str, float]:
    """Each question word weighted by how rare it is among the candidate sentences.

    A question names its subject ("in the work on Turkish sentiment analysis") and what it
    asks ("which features are combined"): the subject's words fill every sentence of the
    paper, the asked-for ones only the few that answer, so rarity tells them apart.

    In sorted order: the weights are summed over this dict, and a set's order changes
    from one process to the next (string hashing), so its sums could differ in the last
    bit and break a tie the other way: the same question gave another answer per run.
    """
    n = len(sentences)
    return {
        w: math.log((n + 1) / (sum(1 for s in sentences if w in s) + 0.5)) for w in sorted(question)
    }


def weighted_coverage(weights: dict[str, float], words: frozenset[str]) -> float:
    total = sum(weights.values())
    return sum(v for w, v in weights.items() if w in words) / total if total > 0 else 0.0


def title_share(question: frozenset[str], title: str) -> float:
    """The share of a title's words that the question uses: a reader names a post or a
    thread by its headline ("what did Takaichi win?" of "Takaichi ... won a landslide")."""
    named = content_words(title)
    return len(named & question) / len(named) if named else 0.0


def names_in(question: frozenset[str], byline: str) -> frozenset[str]:
    """The words of the names in ``byline`` (its blog, its project, an author: see
    ``tracker.models.byline``) that the question names in full: "what did Mira Okafor
    use?" names "Mira Okafor" of "Notes from the Bench; Mira Okafor". Only a whole name
    counts: "the new lab" does not name "Lab News", nor "Kagi Translate" "Kagi Blog"."""
    names = (content_words(name) for name in byline.split(";"))
    return frozenset().union(*(words for words in names if words and words <= question))


def name_share(question: frozenset[str], byline: str) -> float:
    """1 when the question names one of those who publish a story in full (``names_in``)."""
    return 1.0 if names_in(question, byline) else 0.0
