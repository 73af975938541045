"""What every SQLite mixin shares: the database handle and the clock."""
from __future__ import annotations

import time

from ..interface import Store
from .connection import Database


class SQLiteBase(Store):
    """Base of the mixins that together make :class:`SQLiteStore`."""

    backend = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def clock() -> float:
        """Epoch seconds for leases and last_seen (one place to read time)."""
        return time.time()

    async def close(self) -> None:
        await self.db.close()
