"""The store: all server state behind one interface (:class:`Store`).

``open_store(url)`` picks the backend from the URL:

* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the
  folder is created); the default is ``sqlite:///./frazil-data/frazil.db``.
* ``mongodb://host:port/dbname`` (also ``mongodb+srv://``); database name
  defaults to ``frazil``.

Each backend package exports one coroutine building a ready store (schema /
indexes created or migrated): ``server.store.sqlite.open_sqlite_store(path)``
and ``server.store.mongo.open_mongo_store(url)``. They are imported lazily so
a SQLite installation never needs pymongo at import time and vice versa.
"""
from __future__ import annotations

from .interface import (
    ConflictError, InvalidArgumentError, NotFoundError, SchemaVersionError, Store, StoreError,
)
from .query import (
    DatasetFilter, InvalidQuery, JobFilter, ListOptions, LogFilter, Page, TaskFilter,
)
from .records import (
    ACTION_STATUSES, ActionMessage, Attempt, AttemptResult, ClaimedTask, ClaimRequest, ConfigVersion, Credential,
    Dataset, DatasetFile,
    DatasetRights, FailureClass, Group, HeartbeatReply, Job, Log, LogRef, NewDataset, NewJob, NewLog,
    NewPilot, NewTask, OutputFile, Outcome, Pilot, ProvenanceRecord, Quarantine, QueueClass,
    AlertEvent, AlertSubscription, ReportOutcome,
    RetryPolicy, ScratchFile, StoragePressure, Task, TaskStat, Usage, User, Revocation, new_id, nowstr,
)

DEFAULT_URL = "sqlite:///./frazil-data/frazil.db"

__all__ = [
    "DEFAULT_URL", "open_store", "sqlite_path_from_url",
    "Store", "StoreError", "NotFoundError", "ConflictError", "InvalidArgumentError",
    "SchemaVersionError", "InvalidQuery",
    "DatasetFilter", "JobFilter", "TaskFilter", "LogFilter", "ListOptions", "Page",
    "ACTION_STATUSES", "ActionMessage", "Attempt", "AttemptResult", "ClaimedTask", "ClaimRequest", "ConfigVersion", "Dataset",
    "DatasetFile", "DatasetRights", "FailureClass", "Group", "HeartbeatReply", "Job", "Log", "LogRef",
    "NewDataset", "NewJob", "NewLog", "NewPilot", "NewTask", "OutputFile", "Outcome", "Pilot",
    "ProvenanceRecord", "Quarantine", "AlertEvent", "AlertSubscription", "QueueClass", "ReportOutcome", "RetryPolicy", "ScratchFile", "StoragePressure", "Task",
    "TaskStat", "Usage", "User", "Revocation", "new_id", "nowstr", "Credential",
]


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///rel`` -> ``rel``; ``sqlite:////abs`` -> ``/abs`` (SQLAlchemy's rule)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise InvalidArgumentError(
            f"invalid SQLite store URL {url!r}: expected sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db")
    return url[len(prefix):]


async def open_store(url: str = DEFAULT_URL, *, durable: bool = True) -> Store:
    """Open (creating or migrating as needed) the store named by ``url``.

    ``durable`` (the server's ``durable_commits`` setting): a write is
    acknowledged only once it would survive a power loss — SQLite with
    ``synchronous=FULL`` (an fsync of the WAL per group commit), MongoDB
    with the write concern ``w="majority", j=True``. False trades that for
    speed: SQLite ``synchronous=NORMAL`` (survives a process crash, not a
    power loss), MongoDB the URL's or the driver's default write concern."""
    if url.startswith("sqlite:"):
        from .sqlite import open_sqlite_store
        return await open_sqlite_store(sqlite_path_from_url(url), durable=durable)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from .mongo import open_mongo_store
        return await open_mongo_store(url, durable=durable)
    raise InvalidArgumentError(
        f"unsupported store URL {url!r}: use sqlite:///path/to/file.db or mongodb://host:port/dbname")
