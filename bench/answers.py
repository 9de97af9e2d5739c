"""Benchmark ``tracker ask``'s extractive answer: does it say "not covered" when it should,
and is citation [1] the paper the question is about?

Three question sets, built by this script (``--build-sets``) from the shared Qasper set
(``../shared/fixtures/eval/qasper``) and shipped as small files in ``tests/data/``:

* ``answers_answerable.jsonl``: Qasper's questions, each over the whole corpus; its paper
  should be cited [1]. A question is prefixed with the subject of its paper ("In the work on
  language identification for South African languages, ..."), written by hand below from
  each paper's introduction: Qasper's questions were asked with the paper in view ("What
  baselines were used?") and name nothing, while a tracker user names what they ask about.
* ``answers_out_of_corpus.jsonl``: the same questions with their paper removed from the
  corpus: the answer must be "not covered".
* ``answers_unanswerable.jsonl``: questions whose evidence could be located (the lines of
  the paper that hold the answer, or most of its words, and every line naming a distinctive
  part of it: a list item, a quantity, a name; see ``evidence_lines``), with the paper kept
  but those lines removed: in-topic, yet unanswerable. Yes/no answers cannot be located and
  are left out.

Every question carries a split: the papers are divided (by a hash of their id) into a
"fit" part, on which ``--fit`` fits the decision, and a "held-out" part, reported apart.

The corpus: the 20 Qasper papers (full text) and 70 CSFCube abstracts (a fixed sample, as
distractors of the same field), about 90 papers, indexed once through ``save_success`` and
``Tracker.process`` (real chunking, the real embedding model, Chroma and SQLite; see
``bench/retrieval.py``). Removing a paper or lines of it is simulated on that index: BM25 is
rebuilt over the remaining chunks (and the paper's rechunked, reembedded text), and the
dense ranking drops the removed chunks and merges the new ones by cosine distance, so the
three sets share one indexing run.

For each question: ``retrieve`` with ``tracker ask``'s settings, then the extractive answer
(``tracker.answer.support.weigh`` and ``tracker.answer.ask.excerpts_answer``, or
``extractive_answer`` in a version of tracker without them, to measure the "before").
Reported per set and split:
the rate of "not covered", and on the answerable set the rate at which citation [1] is the
question's paper; the AUROC of the decision's probability (answerable against each other
set); with ``--curve``, the trade-off curve over the decision threshold. And, for the
answerable questions whose evidence is located (those with an in-topic twin), how often a
sentence of that evidence is among the passages retrieved, among those sent to an LLM
(``tracker.answer.llm.llm_passages``), among the sentences the excerpts' answer reads, and quoted;
``--read-by-words`` reads the chosen story's chunks that share the question's words rather
than those nearest it by vectors (as before), for comparison.

Usage::

    .venv/bin/python bench/answers.py [--json] [--curve] [--fit] [--build-sets]
        [--qasper DIR] [--csfcube DIR] [--distractors N] [--llm BASE_URL --model NAME]
        [--read-by-words] [--split fit|held-out]

With ``--llm``, every question goes through the LLM path (``tracker.answer.llm.LLMAnswerer``:
the model's answer, checked against its passages, or the excerpts when it fails) against
that OpenAI-compatible server (Ollama, vLLM, OpenAI), and the same rates are printed, with
how often and why the LLM's answer was not used.

Nothing here touches the network. Exits 2 if the Qasper set cannot be found.
"""

# ruff: noqa: E402  (tracker is imported after putting the project root on sys.path)

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from bench.retrieval import EVAL, CachedEmbedder, Dataset, index_corpus, load_dataset
from bench.story_kinds import kind_docs, read_kind_sets
from storage.state import SQLiteStateStore
from storage.vectors import Hit
from tracker.answer import ask
from tracker.answer import llm as llm_path
from tracker.answer.ask import Filters, LexicalIndex, Passage, retrieve
from tracker.settings import Settings
from tracker.understand.chunking import chunk_text

DATA = ROOT / "tests" / "data"
SETS = ("answerable", "out_of_corpus", "unanswerable")
SET_FILES = {name: DATA / f"answers_{name}.jsonl" for name in SETS}
DISTRACTORS = 70
SEED = 12
HELD_OUT_SHARE = 0.3

#: The subject of each Qasper paper, as a user would name it (from its introduction).
PAPER_TOPICS = {
    "paper_8ca5f5b10266": "detecting suspicious Twitter accounts that spread fake news",
    "paper_44297f4d4a48": "identifying the type and target of offensive posts in social media",
    "paper_308c4a183c57": "language identification for South African languages",
    "paper_bf01594cdd51": "BERT transfer learning for hate speech detection and racial bias",
    "paper_1801c2233ec3": "word recognition models against adversarial misspellings",
    "paper_edeb46d515ef": "unsupervised semantic role induction across languages",
    "paper_a411f0b491df": "tag recommendation for e-books",
    "paper_c38b4011dcc3": "Turkish sentiment analysis with word embeddings",
    "paper_27da810cb3d8": "the UTCNN network for stance classification of social media posts",
    "paper_b70353072c77": "using monolingual data for neural machine translation",
    "paper_f0e5d095de2a": "personalized recipe generation from user preferences",
    "paper_94f9cb692728": "judgment prediction for civil cases with law articles",
    "paper_5d7a16c6ab4e": "a multilingual corpus for end-to-end speech-to-text translation",
    "paper_1e076107c997": "automatic document quality assessment",
    "paper_025034385a5e": "learning the polarity of affective events with discourse relations",
    "paper_62dca91ccf83": "question answering for clinical text structuring",
    "paper_1d68eaaeac02": "classifying Hinglish code-mixed text",
    "paper_e046f33d6257": "generating program code from natural language text",
    "paper_a91d301cdc37": "question answering over Open IE tuples",
    "paper_604c37ef8cf3": "multimodal hate speech detection in tweets with images",
}


# --- the question sets ---------------------------------------------------------------------


def split_of(paper: str) -> str:
    """Papers, not questions, are split: a held-out question is about a paper unseen in fit."""
    bucket = int(hashlib.sha256(paper.encode()).hexdigest()[:8], 16) % 100
    return "held-out" if bucket < HELD_OUT_SHARE * 100 else "fit"


def phrase(question: str, paper: str) -> str:
    question = " ".join(question.split())
    return f"In the work on {PAPER_TOPICS[paper]}, {question[0].lower()}{question[1:]}"


_NORM = re.compile(r"[^a-z0-9]+")


def _norm(text: str) -> str:
    return _NORM.sub(" ", text.lower()).strip()


#: An answer's parts: a list answer ("DSL 2015, DSL 2017, JW300 parallel corpus") is split
#: at commas (not a number's), semicolons, brackets and "and"/"or"/"with".
_PART = re.compile(r",(?!\d)|[;()]|\band\b|\bor\b|\bwith\b")
#: A quantity written with a separator ("14,100", "51.7"): distinctive on its own.
_QUANTITY = re.compile(r"(?<![\w.,])\d{1,3}(?:[,.]\d+)+(?!\w)")
#: A name in an answer: an acronym ("TDK", "JW300") or a capitalised word ("Nguni").
_ACRONYM = re.compile(r"\b[A-Za-z]*[A-Z][A-Za-z]*[A-Z0-9][A-Za-z0-9]*\b")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}\b")
#: A part found in more lines of the paper than this share names its subject, not the answer.
PART_SHARE = 0.25


def answer_parts(answer: str, question: str = "", text: str = "") -> set[str]:
    """The parts of an answer that, found in a line, make that line evidence (normalised):
    short list items that are names, hold a number or two content words; quantities;
    acronyms; capitalised words the paper (``text``) never writes in lower case (proper
    names, not "Features" in a title-cased item). Parts made only of the question's own
    words are left out."""
    from tracker.answer.words import STOPWORDS, content_words

    asked = content_words(question)
    answer = re.sub(r"\b(?:BIBREF|INLINEFORM)\d+\b|\$", " ", answer)
    out: set[str] = set()
    for part in _PART.split(answer):
        part = part.strip(" .:-")
        norm, words = _norm(part), content_words(part)
        if not norm or len(norm) < 3 or len(norm.split()) > 5 or (words and words <= asked):
            continue
        if re.search(r"[A-Z0-9]", part) or len(words) >= 2:
            out.add(norm)
    out.update(_norm(n) for n in _QUANTITY.findall(answer))
    names = [*_ACRONYM.findall(answer)]
    names += [w for w in _CAPITALISED.findall(answer) if not re.search(rf"\b{w.lower()}\b", text)]
    out.update(
        _norm(n) for n in names if n.lower() not in STOPWORDS and not content_words(n) <= asked
    )
    return out


def evidence_lines(text: str, answer: str, question: str = "") -> list[int]:
    """The lines of a paper that hold the answer or part of it. A line is evidence when it
    holds the answer's text (normalised), at least 60% of a longer answer's content words,
    or one of its distinctive parts (``answer_parts``: a list item, a quantity, a name)
    that is not in every other line. Empty when the answer as a whole cannot be located.

    Removing only the lines that hold the whole answer left many questions answerable: a
    list of baselines is also introduced item by item, the datasets are named again where
    the results are compared. (The shared Qasper fixture carries no ``evidence`` fields.)"""
    from tracker.answer.words import content_words

    wanted = _norm(answer)
    if wanted in ("yes", "no", "unanswerable") or len(wanted) < 3:
        return []
    words = content_words(answer)
    lines = [f" {_norm(line)} " for line in text.split("\n")]
    found = {
        n
        for n, (norm, line) in enumerate(zip(lines, text.split("\n"), strict=True))
        if norm.strip()
        and (
            f" {wanted} " in norm
            or (len(words) >= 3 and len(words & content_words(line)) / len(words) >= 0.6)
        )
    }
    if not found:
        return []
    for part in answer_parts(answer, question, text):
        hits = [n for n, norm in enumerate(lines) if f" {part} " in norm]
        if len(hits) <= PART_SHARE * len(lines):
            found.update(hits)
    return sorted(found)


def build_sets(qasper: Path) -> dict[str, list[dict[str, Any]]]:
    ds = load_dataset(qasper)
    seen: set[tuple[str, str]] = set()
    sets: dict[str, list[dict[str, Any]]] = {name: [] for name in SETS}
    for qid, q in ds.queries.items():
        paper = str(q["paper_id"])
        text = " ".join(str(q["text"]).split())
        if paper not in ds.corpus or (paper, text) in seen:
            continue
        seen.add((paper, text))
        base = {"id": qid, "question": phrase(text, paper), "paper": paper}
        base["split"] = split_of(paper)
        sets["answerable"].append(base)
        sets["out_of_corpus"].append({**base, "remove_paper": True})
        lines = evidence_lines(ds.corpus[paper][1], str(q["answer"]), text)
        if lines:
            sets["unanswerable"].append({**base, "remove_lines": lines})
    return sets


def write_sets(sets: Mapping[str, list[dict[str, Any]]]) -> None:
    for name, rows in sets.items():
        with SET_FILES[name].open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_sets() -> dict[str, list[dict[str, Any]]]:
    return {
        name: [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
        for name, path in SET_FILES.items()
    }


# --- the corpus and its variants -----------------------------------------------------------


def corpus(qasper: Path, csfcube: Path, distractors: int) -> Dataset:
    """The Qasper papers and a fixed sample of CSFCube abstracts as one dataset."""
    papers = load_dataset(qasper)
    docs = dict(papers.corpus)
    if distractors and (csfcube / "corpus.jsonl").is_file():
        other = load_dataset(csfcube)
        ids = sorted(other.corpus)
        random.Random(SEED).shuffle(ids)
        for doc in ids[:distractors]:
            docs[f"csfcube-{doc}"] = other.corpus[doc]
    return Dataset("answers", docs, {}, {})


class DenseView:
    """The dense index without some chunks and with others added (the corpus variant)."""

    def __init__(self, store: Any, drop: set[str], extra: Sequence[tuple[Hit, np.ndarray]]):
        self.store, self.drop, self.extra = store, drop, extra

    def query(self, vector: np.ndarray, n: int, where: Mapping[str, Any] | None = None) -> list:
        hits = [
            h for h in self.store.query(vector, n + len(self.drop), where) if h.id not in self.drop
        ]
        added = [
            Hit(h.id, h.text, float(1.0 - v @ vector), h.metadata)
            for h, v in self.extra
            if _matches(h.metadata, where)
        ]
        return sorted(hits + added, key=lambda h: (h.distance, h.id))[:n]


def _matches(metadata: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """Whether metadata meets a Chroma ``where`` of equalities joined by ``$and`` (all the
    bench asks: a story, no filters)."""
    if not where:
        return True
    if "$and" in where:
        return all(_matches(metadata, w) for w in where["$and"])
    return all(metadata.get(k) == v for k, v in where.items())


@dataclass
class Bench:
    rows: list[Mapping[str, Any]]
    store: Any
    embedder: CachedEmbedder
    doc_text: dict[str, str]
    story_docs: dict[str, set[str]]
    _variants: dict[tuple[str, tuple[int, ...]], tuple[LexicalIndex, DenseView]]
    #: An answerable question's evidence: the quotable sentences of the lines its in-topic
    #: variant removes (only where they could be located).
    evidence: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Read the chosen story's chunks nearest the question (False: those sharing its words).
    by_vectors: bool = True

    def view(self, case: dict[str, Any]) -> tuple[LexicalIndex, Any]:
        paper = case["paper"]
        key: tuple[str, tuple[Any, ...]]
        if case.get("remove_paper"):
            key = (paper, (-1,))
        elif case.get("remove_lines"):
            key = (paper, tuple(case["remove_lines"]))
        elif case.get("remove_text"):
            key = (paper, tuple(case["remove_text"]))
        else:
            key = ("", ())
        if key not in self._variants:
            self._variants[key] = self._build(paper, key[1])
        return self._variants[key]

    def _build(self, paper: str, removed: tuple[Any, ...]) -> tuple[LexicalIndex, Any]:
        """The corpus without ``paper`` (``(-1,)``), or with its lines numbered in
        ``removed`` deleted, or with the sentences in ``removed`` deleted from every
        document that holds them (a release's line may also stand in its predecessor)."""
        if not removed:
            return LexicalIndex(self.rows), self.store
        if removed == (-1,):
            changed = {paper: None}
        elif all(isinstance(r, int) for r in removed):
            lines = self.doc_text[paper].split("\n")
            changed = {paper: "\n".join(line for n, line in enumerate(lines) if n not in removed)}
        else:
            changed = {}
            for doc, text in self.doc_text.items():
                if any(s in text for s in removed):
                    for s in removed:
                        text = text.replace(s, "")
                    changed[doc] = text
        drop = {str(r["id"]) for r in self.rows if doc_of_id(str(r["id"])) in changed}
        kept = [r for r in self.rows if str(r["id"]) not in drop]
        extra: list[tuple[Hit, np.ndarray]] = []
        for doc, text in changed.items():
            if text is None:
                continue
            own = [r for r in self.rows if doc_of_id(str(r["id"])) == doc]
            chunks = chunk_text("", text)
            vectors = self.embedder.inner.embed([c.text for c in chunks])
            template = own[0]
            for chunk, vector in zip(chunks, vectors, strict=True):
                row = {**template, "id": f"bench/{doc}#v{chunk.index}", "text": chunk.text}
                kept.append(row)
                meta = {k: template[k] for k in ("story_id", "title", "url", "kind", "source")}
                extra.append((Hit(str(row["id"]), chunk.text, 0.0, meta), vector))
        return LexicalIndex(kept), DenseView(self.store, drop, extra)


def doc_of_id(chunk_id: str) -> str:
    return chunk_id.removeprefix("bench/").rsplit("#", 1)[0]


def answer_case(bench: Bench, case: dict[str, Any], chat: Any = None) -> dict[str, Any]:
    """One question's record; through the LLM path when ``chat`` (an ``OpenAIChat``) is given."""
    lexical, dense = bench.view(case)
    n = getattr(ask, "ANSWER_N", 8)
    per_story = getattr(ask, "ANSWER_PER_STORY", 2)
    passages: list[Passage] = retrieve(
        case["question"], Filters(), lexical, dense, bench.embedder, n=n, per_story=per_story
    )
    record: dict[str, Any] = {
        "set": case["set"],
        "id": case["id"],
        "split": case["split"],
        "kind": case.get("kind", "paper"),
    }
    chunks = (
        ask.StoryChunks(lexical, Filters(), dense, bench.embedder)
        if bench.by_vectors
        else ask.StoryChunks(lexical, Filters())
    )
    evidence = bench.evidence.get(case["id"]) if case["set"] == "answerable" else None
    if evidence:
        record["evidence_retrieved"] = holds(evidence, passages)
        record["evidence_sent"] = holds(
            evidence, llm_path.llm_passages(case["question"], passages, chunks)
        )
    if chat is not None:
        answer = llm_path.LLMAnswerer(chat, chunks).answer(
            case["question"], passages, bench.embedder
        )
        record["mode"], record["fallback_reason"] = answer.mode, answer.fallback_reason
        return _scored(bench, case, passages, answer, record)
    try:
        from tracker.answer.support import weigh
    except ImportError:  # tracker before issue 12: its own extractive answer
        answer = ask.extractive_answer(case["question"], passages, bench.embedder)
    else:
        support = weigh(case["question"], passages, bench.embedder, chunks)
        answer = ask.excerpts_answer(support, passages)
        if evidence:
            read = {s.text for s in support.story.sentences} if support.story else set()
            record["evidence_read"] = bool(read & evidence)
            record["evidence_quoted"] = bool(set(_QUOTED.findall(answer.text)) & evidence)
        record["signals"] = support.signals
        record["probability"] = support.probability
        record["chosen_kind"] = (
            next(p.kind for p in passages if p.story_id == support.story.story_id)
            if support.story
            else None
        )
        record["chosen_right"] = bool(
            support.story and case["paper"] in bench.story_docs.get(support.story.story_id, set())
        )
    return _scored(bench, case, passages, answer, record)


_QUOTED = re.compile(r"^> (.*) \[\d+\]$", re.M)


def holds(evidence: frozenset[str], passages: Sequence[Passage]) -> bool:
    """Whether any of the passages holds an evidence sentence."""
    from tracker.answer.quotable import sentences_of

    return any(evidence & set(sentences_of(p.text, p.title)) for p in passages)


def evidence_of(sets: Mapping[str, list[dict[str, Any]]], doc_text: Mapping[str, str]) -> dict:
    from tracker.answer.quotable import sentences_of

    out = {}
    for case in sets["unanswerable"]:
        if "remove_text" in case:
            found = {s for t in case["remove_text"] for s in sentences_of(t)}
            if found:
                out[case["id"]] = frozenset(found)
            continue
        lines = doc_text[case["paper"]].split("\n")
        found = {s for n in case["remove_lines"] for s in sentences_of(lines[n])}
        if found:
            out[case["id"]] = frozenset(found)
    return out


def _scored(
    bench: Bench,
    case: dict[str, Any],
    passages: Sequence[Passage],
    answer: ask.Answer,
    record: dict[str, Any],
) -> dict[str, Any]:
    first = answer.citations[0].story_id if answer.citations else None
    record["found"] = answer.found
    record["right_first"] = bool(first and case["paper"] in bench.story_docs.get(first, set()))
    record["paper_in_top5"] = case["paper"] in {
        d for p in passages[:5] for d in bench.story_docs.get(p.story_id, set())
    }
    record["answer"] = answer.text
    return record


def run(
    qasper: Path,
    csfcube: Path,
    distractors: int,
    chat: Any = None,
    by_vectors: bool = True,
    split: str | None = None,
    kinds: bool = False,
) -> tuple[list[dict[str, Any]], dict]:
    sets = read_sets()
    ds = corpus(qasper, csfcube, distractors)
    item_kinds = {}
    bylines: dict[str, tuple[tuple[str, ...], Mapping[str, str]]] = {}
    if kinds:  # posts, releases and threads beside the papers, and their questions
        for name, cases in read_kind_sets().items():
            sets[name] = [*sets[name], *cases]
        for doc in kind_docs(sets).values():
            ds.corpus[doc.id] = (doc.title, doc.text)
            item_kinds[doc.id] = doc.kind
            bylines[doc.id] = (doc.authors, doc.extra)
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = Settings(home=home, sources_path=home / "sources.yaml")
        state = stack.enter_context(SQLiteStateStore(settings.state_db))
        tracker, index = index_corpus(ds, list(ds.corpus), settings, state, item_kinds, bylines)
        rows = list(tracker.lexical().rows)
        story_docs: dict[str, set[str]] = {}
        for r in rows:
            story_docs.setdefault(str(r["story_id"]), set()).add(doc_of_id(str(r["id"])))
        doc_text = {d: t for d, (_, t) in ds.corpus.items()}
        bench = Bench(
            rows,
            tracker.vectors,
            CachedEmbedder(tracker.embedder),
            doc_text,
            story_docs,
            {},
            evidence_of(sets, doc_text),
            by_vectors,
        )
        started = time.perf_counter()
        records = [
            answer_case(bench, {**case, "set": name}, chat)
            for name in SETS
            for case in sets[name]
            if split in (None, case["split"])
        ]
        index["answer_seconds"] = time.perf_counter() - started
    return records, index


# --- figures -------------------------------------------------------------------------------


def rate(values: Sequence[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """The chance that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return 0.0
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


#: Of the answerable questions whose evidence is located: how often a sentence of it is
#: in the passages retrieved, sent to an LLM, read by the excerpts' answer, and quoted.
EVIDENCE_LABELS = {
    "evidence_retrieved": "retrieved",
    "evidence_sent": "sent to an LLM",
    "evidence_read": "read by the excerpts",
    "evidence_quoted": "quoted",
}
EVIDENCE_FIGURES = tuple(EVIDENCE_LABELS)


def figures(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("fit", "held-out", "all"):
        part = [r for r in records if split == "all" or r["split"] == split]
        by_set = {name: [r for r in part if r["set"] == name] for name in SETS}
        answerable = by_set["answerable"]
        entry: dict[str, Any] = {
            name: {"n": len(rs), "not_covered": rate([not r["found"] for r in rs])}
            for name, rs in by_set.items()
        }
        entry["answerable"]["right_first"] = rate([r["right_first"] for r in answerable])
        entry["answerable"]["right_first_when_answered"] = rate(
            [r["right_first"] for r in answerable if r["found"]]
        )
        entry["answerable"]["paper_in_top5"] = rate([r["paper_in_top5"] for r in answerable])
        for key in EVIDENCE_FIGURES:
            known = [r[key] for r in answerable if key in r]
            if known:
                entry["evidence"] = {**entry.get("evidence", {}), "n": len(known), key: rate(known)}
        if all("probability" in r for r in part):
            pos = [r["probability"] for r in answerable]
            for name in SETS[1:]:
                entry[name]["auroc"] = auroc(pos, [r["probability"] for r in by_set[name]])
            entry["answerable"]["chosen_right"] = rate([r["chosen_right"] for r in answerable])
        out[split] = entry
    return out


def curve(records: Sequence[dict[str, Any]], split: str) -> list[tuple[float, dict[str, float]]]:
    """The refusal rate of each set as the decision threshold moves."""
    part = [r for r in records if split == "all" or r["split"] == split]
    points = []
    for threshold in np.round(np.arange(0.05, 0.96, 0.05), 2):
        points.append(
            (
                float(threshold),
                {
                    name: rate([r["probability"] < threshold for r in part if r["set"] == name])
                    for name in SETS
                },
            )
        )
    return points


def fit(records: Sequence[dict[str, Any]]) -> tuple[dict[str, float], float]:
    """A logistic model of "answerable" from the signals, on the fit split: Newton steps
    with a little L2, each set weighted equally (answerable against the two others)."""
    part = [r for r in records if r["split"] == "fit"]
    names = list(part[0]["signals"])
    x = np.array([[r["signals"][k] for k in names] + [1.0] for r in part])
    y = np.array([1.0 if r["set"] == "answerable" else 0.0 for r in part])
    counts = {name: sum(1 for r in part if r["set"] == name) for name in SETS}
    w_sample = np.array(
        [(2.0 if r["set"] == "answerable" else 1.0) / counts[r["set"]] for r in part]
    )
    w_sample *= len(part) / w_sample.sum()
    beta = np.zeros(x.shape[1])
    ridge = 0.1 * np.eye(x.shape[1])
    ridge[-1, -1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        grad = x.T @ (w_sample * (p - y)) + ridge @ beta
        hess = (x * (w_sample * p * (1 - p))[:, None]).T @ x + ridge
        beta -= np.linalg.solve(hess, grad)
    return {k: float(round(b, 3)) for k, b in zip(names, beta[:-1], strict=True)}, float(
        round(beta[-1], 3)
    )


def threshold_for(records: Sequence[dict[str, Any]], refused: float = 0.10) -> float:
    """The highest threshold (in steps of 0.01) at which at most ``refused`` of the fit
    split's answerable questions are refused: the rule the shipped thresholds follow."""
    probabilities = [
        r["probability"] for r in records if r["split"] == "fit" and r["set"] == "answerable"
    ]
    chosen = 0.01
    for step in range(1, 100):
        t = step / 100
        if rate([p < t for p in probabilities]) <= refused:
            chosen = t
    return chosen


def refit(records: Sequence[dict[str, Any]], weights: dict[str, float], bias: float) -> list:
    from tracker.answer.support import probability

    out = []
    for r in records:
        p = probability(r["signals"], weights, bias)
        out.append({**r, "probability": p})
    return out


def print_figures(f: dict[str, Any], index: dict[str, Any] | None) -> None:
    if index is not None:
        print(
            f"corpus: {index['docs']} documents ({index['chunks']} chunks, {index['stories']} "
            f"stories), indexed in {index['index_seconds']:.0f} s; answering took "
            f"{index['answer_seconds']:.0f} s"
        )
    one_split = not (f["fit"]["answerable"]["n"] and f["held-out"]["answerable"]["n"])
    for split in ("fit", "held-out", "all"):
        e = f[split]
        a = e["answerable"]
        if not a["n"] or (split == "all" and one_split):  # --split: "all" would repeat it
            continue
        line = (
            f"  {split:8s}  not covered: answerable {a['not_covered']:.2f} (n={a['n']}), "
            f"out-of-corpus {e['out_of_corpus']['not_covered']:.2f} "
            f"(n={e['out_of_corpus']['n']}), in-topic unanswerable "
            f"{e['unanswerable']['not_covered']:.2f} (n={e['unanswerable']['n']}); "
            f"[1] right {a['right_first']:.2f} (of answered {a['right_first_when_answered']:.2f}; "
            f"paper in top 5 passages {a['paper_in_top5']:.2f})"
        )
        if "auroc" in e["out_of_corpus"]:
            line += (
                f"; AUROC vs out-of-corpus {e['out_of_corpus']['auroc']:.2f}, "
                f"vs in-topic {e['unanswerable']['auroc']:.2f}; chosen story right "
                f"{a['chosen_right']:.2f}"
            )
        print(line)
        if "evidence" in e:
            ev = e["evidence"]
            shown = ", ".join(  # the LLM path neither reads sentences nor quotes: left out
                f"{label} {ev[key]:.2f}" for key, label in EVIDENCE_LABELS.items() if key in ev
            )
            print(f"            evidence of {ev['n']} answerable questions: {shown}")


def print_fallbacks(records: Sequence[dict[str, Any]]) -> None:
    """How often the LLM's answer was not used, and why (the reasons' first words)."""
    reasons: dict[str, int] = {}
    for r in records:
        if r.get("fallback_reason"):
            key = " ".join(str(r["fallback_reason"]).split()[:8])
            reasons[key] = reasons.get(key, 0) + 1
    used = sum(1 for r in records if r.get("mode") == "llm")
    print(f"  the LLM's own answer used for {used} of {len(records)} questions")
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"    fell back to excerpts {count}x: {reason}...")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qasper", type=Path, default=EVAL / "qasper")
    parser.add_argument("--csfcube", type=Path, default=EVAL / "csfcube")
    parser.add_argument("--distractors", type=int, default=DISTRACTORS)
    parser.add_argument("--build-sets", action="store_true", help="write tests/data/answers_*")
    parser.add_argument("--fit", action="store_true", help="fit the decision on the fit split")
    parser.add_argument("--curve", action="store_true", help="print the trade-off curve")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--read-by-words",
        action="store_true",
        help="read the chosen story's chunks that share the question's words, not the "
        "nearest by vectors (as before: for comparison)",
    )
    parser.add_argument(
        "--split",
        choices=("fit", "held-out"),
        help="answer only this split's questions (a slow --llm model: held-out is 61 of 206)",
    )
    parser.add_argument("--dump", type=Path, help="write every question's record here")
    parser.add_argument(
        "--kinds",
        action="store_true",
        help="also ask the post, release and thread sets, over the papers and several "
        "hundred posts, releases and threads; figures per kind",
    )
    parser.add_argument(
        "--llm",
        metavar="BASE_URL",
        help="answer through the LLM path with this OpenAI-compatible server "
        "(e.g. http://127.0.0.1:11434/v1 for Ollama); the key is OPENAI_API_KEY",
    )
    parser.add_argument("--model", help="the chat model the --llm server serves")
    args = parser.parse_args(argv)
    if args.llm and not args.model:
        parser.error("--llm needs --model")
    if args.llm and (args.fit or args.curve):
        parser.error("--fit and --curve are for the excerpts' decision, not --llm")
    if not (args.qasper / "corpus.jsonl").is_file():
        print(f"cannot find the Qasper set in {args.qasper}", file=sys.stderr)
        return 2
    if args.build_sets:
        sets = build_sets(args.qasper)
        write_sets(sets)
        for name, rows in sets.items():
            held = sum(r["split"] == "held-out" for r in rows)
            print(f"{SET_FILES[name].relative_to(ROOT)}: {len(rows)} questions ({held} held out)")
        return 0
    chat = None
    if args.llm:
        import os

        from tracker.llm.chat import OpenAIChat

        chat = OpenAIChat(args.model, os.environ.get("OPENAI_API_KEY"), args.llm, timeout=120)
    records, index = run(
        args.qasper,
        args.csfcube,
        args.distractors,
        chat,
        not args.read_by_words,
        args.split,
        args.kinds,
    )
    if args.dump:
        args.dump.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result: dict[str, Any] = {"shipped": figures(records), "index": index}
    if args.fit:
        # Papers keep a decision of their own (tracker.answer.support.decision_for): with
        # --kinds, the papers' and the other kinds' decisions are fitted apart. Papers'
        # weights are fitted on the paper questions (as they were first fitted); the other
        # kinds' on every question whose chosen story is not a paper, since that is the
        # decision such a story is given (a paper question may choose a post).
        papers = [r for r in records if r["kind"] == "paper"]
        weights, bias = fit(papers)
        result["fitted"] = {"weights": weights, "bias": bias}
        result["fitted_figures"] = figures(refit(papers, weights, bias))
        others = [r for r in records if r.get("chosen_kind") not in (None, "", "paper")]
        if others:
            weights, bias = fit(others)
            threshold = threshold_for(refit(others, weights, bias))
            result["fitted_other"] = {"weights": weights, "bias": bias, "threshold": threshold}
    if args.json:
        print(json.dumps(result))
        return 0
    print_figures(result["shipped"], index)
    if args.kinds:
        for kind in ("paper", "post", "release", "thread"):
            own = [r for r in records if r["kind"] == kind]
            if own:
                print(f" {kind}s:")
                print_figures(figures(own), None)
    if chat is not None:
        print_fallbacks(records)
    if args.curve and all("probability" in r for r in records):
        for kind in ("paper", "post", "release", "thread") if args.kinds else ():
            own = [r for r in records if r["kind"] == kind]
            print(f"  trade-off of {kind}s (fit): threshold -> not covered (answerable / out / in)")
            for threshold, rates in curve(own, "fit"):
                print(
                    f"    {threshold:.2f}  {rates['answerable']:.2f} / "
                    f"{rates['out_of_corpus']:.2f} / {rates['unanswerable']:.2f}"
                )
        for split in ("fit", "held-out"):
            print(f"  trade-off ({split}): threshold -> not covered (answerable / out / in-topic)")
            for threshold, rates in curve(records, split):
                print(
                    f"    {threshold:.2f}  {rates['answerable']:.2f} / "
                    f"{rates['out_of_corpus']:.2f} / {rates['unanswerable']:.2f}"
                )
    if "fitted_other" in result:
        other = result["fitted_other"]
        print(
            f"  fitted for posts, releases and threads: {other['weights']}, bias "
            f"{other['bias']}, threshold {other['threshold']}"
        )
    if args.fit:
        print(f"  fitted: weights {result['fitted']['weights']}, bias {result['fitted']['bias']}")
        print("  with the fitted weights (threshold 0.5):")
        print_figures(result["fitted_figures"], index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
