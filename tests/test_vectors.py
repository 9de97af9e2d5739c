"""The vector store: chunk metadata, persistence, and a Chroma server when CHROMA_URL is set."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import RECENT
from tracker.app import open_tracker
from tracker.cli import main
from tracker.settings import Settings


def test_every_chunk_carries_what_retrieval_needs(world, capsys) -> None:
    assert main(["collect"]) == 0
    with open_tracker(Settings.from_env()) as tracker:
        chunks = tracker.vectors.chunks_of("papers/arxiv:2411.01234")
        story = tracker.stories.story_of("papers", "arxiv:2411.01234")
    assert chunks and story
    meta = chunks[0].metadata
    assert meta["item_id"] == "arxiv:2411.01234" and meta["story_id"] == story
    assert meta["kind"] == "paper" and meta["source"] == "papers"
    assert meta["url"] == "https://arxiv.org/abs/2411.01234"
    assert meta["title"] == "Faster Decoding with Draft Models"
    assert meta["published"] == RECENT.isoformat()
    assert meta["published_ts"] == int(RECENT.timestamp())
    assert chunks[0].text.startswith("Faster Decoding with Draft Models")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path):
    # The chroma CLI is installed with chromadb, next to this interpreter.
    binary = shutil.which("chroma", path=os.path.dirname(sys.executable))
    if binary is None:
        pytest.fail("the chroma CLI should be installed with chromadb")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    ready = threading.Event()
    for _ in range(200):  # bounded: about 20 s for the server to come up
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                break
        except OSError:
            ready.wait(0.1)
    else:
        proc.kill()
        pytest.fail("chroma run did not start")
    yield url
    proc.terminate()
    proc.wait(10)


def test_chroma_url_stores_chunks_on_a_chroma_server(
    world, chroma_server, monkeypatch, capsys
) -> None:
    import chromadb

    monkeypatch.setenv("CHROMA_URL", chroma_server)
    assert main(["collect"]) == 0
    settings = Settings.from_env()
    assert not settings.chroma_path.exists()  # nothing went to the local disk store
    port = int(chroma_server.rsplit(":", 1)[1])
    collection = chromadb.HttpClient(host="127.0.0.1", port=port).get_collection("chunks")
    assert collection.count() >= 4
    # The collection remembers which model built it, so another model never mixes in.
    assert collection.metadata["embedder"] == "local:all-MiniLM-L6-v2-int8"


# --- what a collection pins ---------------------------------------------------------------

PINNED = {"embedder": "local:all-MiniLM-L6-v2-int8", "dimensions": 384, "chroma": "1.5.9"}
TRACKERS = {"hnsw": {"space": "cosine"}, "embedding_function": {"name": "tracker"}}


@pytest.mark.parametrize(
    ("metadata", "configuration", "said"),
    [
        pytest.param(PINNED, TRACKERS, None, id="as built"),
        pytest.param({**PINNED, "chroma": "1.4.0"}, TRACKERS, None, id="an older Chroma"),
        pytest.param({**PINNED, "chroma": "1.5.9rc1"}, TRACKERS, None, id="its release candidate"),
        pytest.param({}, {}, None, id="nothing pinned yet"),
        pytest.param(
            {**PINNED, "embedder": "openai:text-embedding-3-small"},
            TRACKERS,
            "built with the embedder 'openai:text-embedding-3-small'",
            id="another model",
        ),
        pytest.param(
            {**PINNED, "dimensions": 768}, TRACKERS, "768-dimensional", id="other dimensions"
        ),
        pytest.param(PINNED, {"hnsw": {"space": "l2"}}, "l2 distance", id="another space"),
        pytest.param(
            PINNED,
            {"embedding_function": {"name": "default"}},
            "Chroma's 'default' embedding function",
            id="Chroma's own embedding function",
        ),
        pytest.param(
            {**PINNED, "chroma": "2.0.1"}, TRACKERS, "Chroma 2.0.1, newer", id="a newer Chroma"
        ),
    ],
)
def test_a_collection_is_used_only_as_it_was_built(metadata, configuration, said):
    from storage.vectors import pinned_problem

    problem = pinned_problem(metadata, configuration, "local:all-MiniLM-L6-v2-int8", 384, "1.5.9")
    assert problem is None if said is None else said in (problem or "")


def test_a_collection_a_newer_chroma_wrote_is_refused_in_one_sentence(tmp_path: Path) -> None:
    import warnings

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from storage.vectors import ChromaVectorStore, ModelMismatchError

    path = tmp_path / "chroma"
    ChromaVectorStore("test:tiny-8", 8, None, path=path)
    client = chromadb.PersistentClient(
        str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.get_collection("chunks")
    collection.modify(metadata={**(collection.metadata or {}), "chroma": "99.0.0"})

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said by tracker, not as a library's warning
        with pytest.raises(ModelMismatchError) as refused:
            ChromaVectorStore("test:tiny-8", 8, None, path=path)
    said = str(refused.value)
    assert "written by Chroma 99.0.0" in said and "tracker process --reembed" in said
    assert str(path) in said
