"""The vector store: chunks of every item with their embeddings, in Chroma.

Embedded on disk under TRACKER_HOME by default; a Chroma server when
CHROMA_URL is set. The collection records which embedder built it, and is
opened with a registered embedding function so that another process (or
``chroma`` itself) can query it by text without being handed the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from storage.backup import writes_held
from storage.errors import machine_trouble
from tracker.errors import StorageError

COLLECTION = "chunks"


class ModelMismatchError(StorageError):
    """The collection was built with another embedder, or in a way this version cannot
    read; mixing vectors would be garbage, so it is rebuilt rather than used."""


def pinned_problem(
    metadata: Mapping[str, Any],
    configuration: Mapping[str, Any],
    embedder: str,
    dimensions: int,
    chroma: str,
) -> str | None:
    """What keeps this tracker from using a collection as it was built, in words (None:
    nothing). A collection pins the embedder, its dimensions, the cosine space, tracker's
    embedding function (so that any process can query it by text) and the Chroma release
    that made it, which an older Chroma cannot be trusted to read."""
    built_with = metadata.get("embedder")
    if built_with and built_with != embedder:
        return f"was built with the embedder {built_with!r}, but {embedder!r} is configured"
    built_dims = metadata.get("dimensions")
    if built_dims and built_dims != dimensions:
        return f"holds {built_dims}-dimensional vectors, but the embedder makes {dimensions}"
    space = (configuration.get("hnsw") or {}).get("space")
    if space and space != "cosine":
        return f"measures {space} distance, not cosine"
    function = configuration.get("embedding_function")
    if isinstance(function, Mapping) and function.get("name") not in (None, "tracker"):
        return f"was made with Chroma's {function.get('name')!r} embedding function, not tracker's"
    made_by = str(metadata.get("chroma") or "")
    if made_by and _release(made_by) > _release(chroma):
        return f"was written by Chroma {made_by}, newer than this tracker's Chroma {chroma}"
    return None


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:3]:
        digits = re.match(r"\d*", part)
        parts.append(int(digits.group() or 0) if digits else 0)
    return tuple(parts)


@dataclass(frozen=True)
class ChunkRecord:
    id: str
    text: str
    vector: np.ndarray
    metadata: Mapping[str, str | int | float | bool]


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    distance: float
    metadata: Mapping[str, Any]


class VectorStore(Protocol):
    embedder_name: str

    def replace_items(self, records: Mapping[str, Sequence[ChunkRecord]]) -> None: ...

    def writing(self) -> AbstractContextManager[None]:
        """Held around a write of vectors and the chunk texts that go with them."""
        ...

    def query(
        self, vector: np.ndarray, n: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]: ...

    def count(self) -> int: ...


class ChromaVectorStore:
    """Chunks in a Chroma collection (on disk, or on a server)."""

    def __init__(
        self,
        embedder_name: str,
        dimensions: int,
        embedding_function: Any,
        path: Path | None = None,
        url: str | None = None,
        rebuild: bool = False,
    ):
        """Open (or create) the collection; ``rebuild`` empties it first, for re-embedding."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.embedder_name = embedder_name
        #: The folder of an embedded store (None on a server): its writes are held while
        #: ``tracker backup`` copies it.
        self.path: Path | None = None
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if url:
                parts = urlsplit(url)
                self._client: Any = chromadb.HttpClient(
                    host=parts.hostname or "localhost",
                    port=parts.port or (443 if parts.scheme == "https" else 8000),
                    ssl=parts.scheme == "https",
                    settings=chroma_settings,
                )
                self.where = url
            else:
                if path is None:
                    raise ValueError("a path or a url is needed")
                path.mkdir(parents=True, exist_ok=True)
                self.path = path
                self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
                self.where = str(path)
            if rebuild:
                self._drop()
            self._collection = self._open(embedding_function, dimensions)
        except StorageError:
            raise
        except Exception as exc:  # chromadb raises many kinds; all mean "no vector store"
            raise machine_trouble(exc, url or path) or StorageError(
                f"cannot open the Chroma store at {url or path} ({exc})"
            ) from None

    def _open(self, embedding_function: Any, dimensions: int) -> Any:
        import chromadb

        existing = {
            c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections()
        }
        if COLLECTION in existing:
            collection = self._client.get_collection(COLLECTION, embedding_function=None)
            problem = pinned_problem(
                collection.metadata or {},
                collection.configuration_json or {},
                self.embedder_name,
                dimensions,
                chromadb.__version__,
            )
            if problem:
                raise ModelMismatchError(
                    f"the vector store at {self.where} {problem}. Run  tracker process "
                    "--reembed  to rebuild it from the state store (nothing is lost), or go "
                    "back to the tracker (or TRACKER_EMBEDDING_MODEL) that built it"
                )
            return self._client.get_collection(COLLECTION, embedding_function=embedding_function)
        return self._client.create_collection(
            COLLECTION,
            embedding_function=embedding_function,
            metadata={
                "embedder": self.embedder_name,
                "dimensions": dimensions,
                "chroma": chromadb.__version__,
            },
            configuration={"hnsw": {"space": "cosine"}},
        )

    def _drop(self) -> None:
        existing = {
            c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections()
        }
        if COLLECTION in existing:
            with self.writing():
                self._client.delete_collection(COLLECTION)

    def writing(self) -> AbstractContextManager[None]:
        """Held around every write (and by ``tracker backup`` while it copies the store)."""
        return writes_held(self.path) if self.path is not None else nullcontext()

    def replace_items(self, records: Mapping[str, Sequence[ChunkRecord]]) -> None:
        """Make ``records[item_key]`` the chunks of each item (an updated item may have fewer)."""
        from chromadb.errors import ChromaError

        with self.writing():
            try:
                self._replace(records)
            except (ChromaError, OSError) as exc:  # the machine's, said as Chroma says it
                where = self.where
                raise machine_trouble(exc, where) or StorageError(
                    f"Chroma could not write its files in {where} ({exc}); is the disk full? "
                    "Free some space, then run the command again: what was saved is kept"
                ) from None

    def _replace(self, records: Mapping[str, Sequence[ChunkRecord]]) -> None:
        keys = list(records)
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            self._collection.delete(where={"item_key": {"$in": part}})
            rows = [(key, r) for key in part for r in records[key]]
            for offset in range(0, len(rows), 1000):  # under Chroma's maximum batch size
                batch = rows[offset : offset + 1000]
                self._collection.upsert(
                    ids=[r.id for _, r in batch],
                    documents=[r.text for _, r in batch],
                    embeddings=np.stack([r.vector for _, r in batch]).astype(np.float32),
                    metadatas=[{**r.metadata, "item_key": key} for key, r in batch],
                )

    def query(
        self, vector: np.ndarray, n: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        count = self.count()
        if count == 0:
            return []
        result = self._collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=min(n, count),
            where=dict(where) if where else None,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(id=i, text=d or "", distance=float(dist), metadata=m or {})
            for i, d, dist, m in zip(
                result["ids"][0],
                result["documents"][0],
                result["distances"][0],
                result["metadatas"][0],
                strict=True,
            )
        ]

    def chunks_of(self, item_key: str) -> list[Hit]:
        found = self._collection.get(
            where={"item_key": item_key}, include=["documents", "metadatas"]
        )
        return [
            Hit(id=i, text=d or "", distance=0.0, metadata=m or {})
            for i, d, m in zip(found["ids"], found["documents"], found["metadatas"], strict=True)
        ]

    def count(self) -> int:
        return int(self._collection.count())

    def ids(self) -> set[str]:
        """Every chunk id in the collection (to check it against the state store's)."""
        found: set[str] = set()
        total = self.count()
        for offset in range(0, total, 5000):
            found.update(self._collection.get(include=[], limit=5000, offset=offset)["ids"])
        return found


# --- the embedder as Chroma sees it ---------------------------------------------------
