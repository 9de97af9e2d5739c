"""Which sentences of a passage can be quoted as an answer. Pure.

An answer without an LLM is made of the corpus' own sentences, so a sentence must read as
one when quoted alone: whole prose, cleaned of converted papers' reference markers, and not
a heading, a caption, table residue or boilerplate about the paper itself.
"""

from __future__ import annotations

import re

from tracker.text import SENTENCE_END

#: Reference markers of converted papers (S2ORC, Qasper): "BIBREF3", "FIGREF1", "TABREF2".
_MARKER = re.compile(r"(?:\s*\b(?:BIB|FIG|TAB|SEC|EQ)REF\d+\b(?:\s*,(?=\s*\w+REF\d))?)+")
_EMPTY_BRACKETS = re.compile(r"[(\[]\s*(?:[,;]\s*)*[)\]]")
_LOOSE_COMMAS = re.compile(r"\s*(?:,\s*)+(?=[,.;:)\]])|(?<=[(\[])\s*,\s*")
_CAPTION = re.compile(
    r"^(?:fig(?:ure)?\.?|table|tab\.|algorithm|listing|eq(?:uation)?\.?)\s*\d", re.I
)
#: Sentences that are about the paper rather than its findings.
_BOILERPLATE = re.compile(
    r"|".join(
        (
            r"\b(?:rest|remainder) of (?:this|the) (?:paper|article|section)\b",
            r"\bis (?:organi[sz]ed|structured) as follows\b",
            r"\bin (?:this|the next|the following) section,? we\b",
            r"\bwe (?:compare|evaluate) (?:our|the) (?:models?|methods?|approach) against\b",
            r"\b(?:licen[cs]ed under|creative commons|license details)\b",
            r"\bwe (?:would like to )?thank\b",
            r"\b(?:was|is|were) (?:partially |partly )?(?:supported|funded) by\b",
            r"\b(?:code|data|dataset|corpus) (?:is|are) (?:publicly )?available at\b",
            r"https?://",
            r"\bshown in (?:figure|table|fig\.)\s*\d*\.?$",
            r"^(?:results|examples?) (?:are|is) (?:shown|given|presented|reported) in\b",
        )
    ),
    re.I,
)


MIN_CHARS = 40
MIN_WORDS = 6


def clean_sentence(sentence: str) -> str:
    """The sentence without reference markers and the brackets and commas they leave."""
    text = _MARKER.sub("", sentence)
    text = _EMPTY_BRACKETS.sub("", text)
    text = _LOOSE_COMMAS.sub("", text)
    text = re.sub(r"\s+([,.;:!?)\]])", r"\1", text)
    return " ".join(text.split())


def quotable(sentence: str) -> bool:
    """Whether a (cleaned) sentence can be quoted as an answer: a whole sentence of prose,
    not a heading, a caption, table residue or boilerplate about the paper itself."""
    words = sentence.split()
    if len(sentence) < MIN_CHARS or len(words) < MIN_WORDS:
        return False
    if sentence[-1] not in ".!?\"')”":  # a heading, a list item or a cut-off line
        return False
    if ":::" in sentence or _CAPTION.match(sentence) or _BOILERPLATE.search(sentence):
        return False
    alphabetic = sum(1 for w in words if re.fullmatch(r"[A-Za-z][A-Za-z'’-]*[.,;:]?", w))
    return alphabetic / len(words) >= 0.6  # tables flattened into text are mostly numbers


#: A line of release notes says something on its own from this many words.
MIN_NOTE_WORDS = 4


def sentences_of(text: str, title: str = "", kind: str = "") -> list[str]:
    """The quotable sentences of a passage, cleaned, in order. The title that leads a
    story's first chunk and any line that is not prose (a heading) are left out.

    Two kinds of story speak otherwise: a release's notes are lines ("Removed the legacy
    --max-tokens flag"), each a statement whether or not it ends with a full stop; and a
    thread that is only its title (a link shared on Hacker News or Reddit), or whose text
    has no sentence to quote ("Setup: llama.cpp b4200. Numbers below."), says what it says
    in that title, which is then its one sentence."""
    body = text
    if title and body.startswith(title):
        body = body[len(title) :]
    out = []
    for paragraph in re.split(r"\n+", body):
        if kind == "release" and _note(paragraph):
            out.append(clean_sentence(" ".join(paragraph.split())))
            continue
        for sentence in SENTENCE_END.split(" ".join(paragraph.split())):
            cleaned = clean_sentence(sentence)
            if quotable(cleaned):
                out.append(cleaned)
    headed = not body.strip() or (title and text.startswith(title))
    if not out and headed and len(title.split()) >= MIN_NOTE_WORDS:
        out.append(clean_sentence(" ".join(title.split())))
    return out


def _note(line: str) -> bool:
    """A line of release notes that states something (not a heading like "Fixes")."""
    words = line.split()
    if len(words) < MIN_NOTE_WORDS or len(line) < 20:
        return False
    return not _BOILERPLATE.search(line)
