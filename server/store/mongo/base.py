"""State shared by every part of the MongoDB store: client, collections, mode."""
from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from . import schema
from .connection import ServerInfo

Doc = dict[str, Any]

DUPLICATE_KEY = 11000


def only_duplicates(exc: BulkWriteError) -> bool:
    """Whether every error of an unordered bulk write is a duplicate key (a retry)."""
    errors = exc.details.get("writeErrors", [])
    return bool(errors) and all(e.get("code") == DUPLICATE_KEY for e in errors) and not exc.details.get(
        "writeConcernErrors")


class MongoBase:
    """Collections by role, and the transaction mode chosen at start."""

    backend = "mongodb"

    def __init__(self, client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc], info: ServerInfo,
                 transactions: bool) -> None:
        self._client = client
        self._db = db
        self.server_info = info
        self.transactions = transactions
        """True: two-document changes run in one transaction; False: the ordered fallback."""
        self._closed = False
        c = db.get_collection
        self._counters: AsyncCollection[Doc] = c(schema.COUNTERS)
        self._datasets: AsyncCollection[Doc] = c(schema.DATASETS)
        self._rights: AsyncCollection[Doc] = c(schema.RIGHTS)
        self._configs: AsyncCollection[Doc] = c(schema.CONFIGS)
        self._jobs: AsyncCollection[Doc] = c(schema.JOBS)
        self._tasks: AsyncCollection[Doc] = c(schema.TASKS)
        self._classes: AsyncCollection[Doc] = c(schema.QUEUE_CLASSES)
        self._attempts: AsyncCollection[Doc] = c(schema.ATTEMPTS)
        self._outputs: AsyncCollection[Doc] = c(schema.OUTPUTS)
        self._stats: AsyncCollection[Doc] = c(schema.TASK_STATS)
        self._logs: AsyncCollection[Doc] = c(schema.LOGS)
        self._chunks: AsyncCollection[Doc] = c(schema.LOG_CHUNKS)
        self._files: AsyncCollection[Doc] = c(schema.FILES)
        self._pilots: AsyncCollection[Doc] = c(schema.PILOTS)
        self._users: AsyncCollection[Doc] = c(schema.USERS)
        self._groups: AsyncCollection[Doc] = c(schema.GROUPS)
        self._usage: AsyncCollection[Doc] = c(schema.USAGE)
        self._leases: AsyncCollection[Doc] = c(schema.LEASES)
        self._revocations: AsyncCollection[Doc] = c(schema.REVOCATIONS)
        self._scratch: AsyncCollection[Doc] = c(schema.SCRATCH)
        self._actions: AsyncCollection[Doc] = c(schema.ACTIONS)

    async def _next_seq(self, name: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive numbers of counter ``name``; returns the first.

        One atomic ``$inc`` upsert: concurrent callers get disjoint ranges.
        """
        doc = await self._counters.find_one_and_update(
            {"_id": name}, {"$inc": {"n": count}}, upsert=True, return_document=ReturnDocument.AFTER)
        assert doc is not None  # upsert with AFTER always returns the document
        return int(doc["n"]) - count + 1
