"""The SQLite store: one class assembled from one mixin per concern."""
from __future__ import annotations

import asyncio
import os

from .accounts import AccountsMixin
from .actions import ActionsMixin
from .attempt_queries import AttemptQueriesMixin
from .claim import ClaimMixin
from .connection import Database, connect
from .credentials import CredentialsMixin
from .datasets import DatasetsMixin
from .files import FilesMixin
from .jobs import JobsMixin
from .logs import LogsMixin
from .pilots import PilotsMixin
from .quarantines import QuarantinesMixin
from .alerts import AlertsMixin
from .reports import ReportsMixin
from .rollup import RollupMixin
from .scheduling import SchedulingMixin
from .sources import SourcesMixin
from .schema import migrate
from .tasks import TasksMixin


class SQLiteStore(DatasetsMixin, JobsMixin, TasksMixin, SchedulingMixin, ClaimMixin, ReportsMixin,
                  RollupMixin, LogsMixin, FilesMixin, PilotsMixin, AccountsMixin, ActionsMixin, CredentialsMixin,
                  SourcesMixin, AttemptQueriesMixin, QuarantinesMixin, AlertsMixin):
    """The embedded default store (``sqlite:///./frazil-data/frazil.db``)."""


def prepare_file(path: str) -> int:
    """Create the folder and bring the schema up to date; the version found."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    conn = connect(path)
    try:
        return migrate(conn, path)
    finally:
        conn.close()


async def open_sqlite_store(path: str, *, durable: bool = True) -> SQLiteStore:
    """Open (create, migrate) the store file at ``path`` without blocking the loop;
    ``durable``: ``synchronous=FULL`` (see connection.py), else NORMAL."""
    await asyncio.to_thread(prepare_file, path)
    db = await asyncio.to_thread(Database, path, durable=durable)
    return SQLiteStore(db)
