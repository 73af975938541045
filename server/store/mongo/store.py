"""The MongoDB store: every part of the Store contract, on pymongo's async API."""
from __future__ import annotations

import os
from typing import Any

from ..interface import InvalidArgumentError, Store
from .accounts import AccountsMixin
from .actions import ActionsMixin
from .connection import database_name, make_client, probe_server
from .credentials import CredentialsMixin
from .datasets import DatasetsMixin
from .files import FilesMixin
from .logs import LogsMixin
from .pilots import PilotsMixin
from .repair import RepairMixin
from .sources import SourcesMixin
from .schema import ensure_indexes


class MongoStore(RepairMixin, DatasetsMixin, LogsMixin, FilesMixin, PilotsMixin, AccountsMixin, ActionsMixin,
                 CredentialsMixin, SourcesMixin, Store):
    """A frazil store in one MongoDB database. Build it with :func:`open_mongo_store`."""

    backend = "mongodb"

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()


#: Operator override of the transaction mode: "on", "off" or "auto" (default).
TRANSACTIONS_ENV = "FRAZIL_MONGO_TRANSACTIONS"


def _transactions_override() -> bool | None:
    value = os.environ.get(TRANSACTIONS_ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("on", "off"):
        return value == "on"
    raise InvalidArgumentError(f"{TRANSACTIONS_ENV} must be on, off or auto, got {value!r}")


async def open_mongo_store(url: str, *, transactions: bool | None = None, repair: bool = True,
                           **client_options: Any) -> MongoStore:
    """Connect, create collections and indexes (idempotent), finish interrupted changes.

    ``transactions``: None = the ``FRAZIL_MONGO_TRANSACTIONS`` environment
    variable (on/off/auto), else use them when the server supports them
    (replica set or sharded cluster); False forces the single-document
    fallback; True requires them (a standalone mongod then fails on the
    first transaction).
    """
    if transactions is None:
        transactions = _transactions_override()
    client = make_client(url, **client_options)
    try:
        db = client.get_database(database_name(url))
        info = await probe_server(db)
        await ensure_indexes(db)
        store = MongoStore(client, db, info, info.transactions if transactions is None else transactions)
        if repair:
            await store.repair()
    except BaseException:
        await client.close()
        raise
    return store
