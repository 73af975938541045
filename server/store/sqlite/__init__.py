"""SQLite backend of the store (the embedded default): WAL, one writer thread
with group commit, schema migrations, a claim path indexed by resource class."""
from __future__ import annotations

from .store import SQLiteStore, open_sqlite_store

__all__ = ["SQLiteStore", "open_sqlite_store"]
