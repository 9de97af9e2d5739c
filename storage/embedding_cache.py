"""Vectors already computed, by content hash and model: an unchanged chunk or sentence is
never embedded twice, whichever item or run it comes from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from storage.errors import wrapped
from storage.state import SQLiteStateStore


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).copy()


@wrapped
class EmbeddingCache:
    def __init__(self, state: SQLiteStateStore):
        self.state = state
        self._db = state.db

    def get(self, hashes: Iterable[str], model: str) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN ({marks})",
                (model, *part),
            )
            found.update({r["hash"]: from_blob(r["vector"]) for r in rows})
        return found

    def put(self, vectors: Mapping[str, np.ndarray], model: str) -> None:
        with self.state.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO embeddings (hash, model, vector) VALUES (?, ?, ?)",
                [(h, model, to_blob(v)) for h, v in vectors.items()],
            )
