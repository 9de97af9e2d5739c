"""All storage I/O of tracker: the SQLite state store and its stores by concern, and Chroma.

Nothing outside this package opens a database.
"""

from storage.state import SaveCounts, SourceState, SQLiteStateStore

__all__ = ["SQLiteStateStore", "SaveCounts", "SourceState"]
