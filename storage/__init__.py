"""All storage I/O of tracker: the SQLite state store (and, later, Chroma).

Nothing outside this package opens a database.
"""

from storage.state import SaveCounts, SourceState, SQLiteStateStore, StateStore

__all__ = ["SQLiteStateStore", "SaveCounts", "SourceState", "StateStore"]
