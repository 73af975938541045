"""The MongoDB store: every part of the Store contract, on pymongo's async API."""
from __future__ import annotations

import os
from typing import Any

from ..interface import InvalidArgumentError, Store
from .accounts import AccountsMixin
from .actions import ActionsMixin
from .attempt_queries import AttemptQueriesMixin
from .connection import database_name, make_client, probe_server
from .credentials import CredentialsMixin
from .datasets import DatasetsMixin
from .files import FilesMixin
from .logs import LogsMixin
from .pilots import PilotsMixin
from .quarantines import QuarantinesMixin
from .alerts import AlertsMixin
from .repair import RepairMixin
from .sources import SourcesMixin
from .schema import ensure_indexes


class MongoStore(RepairMixin, DatasetsMixin, LogsMixin, FilesMixin, PilotsMixin, AccountsMixin, ActionsMixin,
                 CredentialsMixin, SourcesMixin, AttemptQueriesMixin, QuarantinesMixin, AlertsMixin,
                 Store):
    """A frazil store in one MongoDB database. Build it with :func:`open_mongo_store`."""

    backend = "mongodb"

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()


#: Operator override of the transaction mode: "on", "off" or "auto" (default).
TRANSACTIONS_ENV = "FRAZIL_MONGO_TRANSACTIONS"
DURABLE_WRITES: dict[str, Any] = {"w": "majority", "journal": True}
"""The write concern of every write when ``durable``: acknowledged once in the
on-disk journal of a majority of the replica set (``j=True``)."""


def durable_write_options(url: str) -> dict[str, Any]:
    """``DURABLE_WRITES`` less what the URL sets itself (pymongo lets keyword
    options override the URL's, so an operator's ``?w=...`` must be left out here)."""
    query = url.partition("?")[2].lower()
    given = {part.partition("=")[0] for part in query.split("&") if part}
    return {key: value for key, value in DURABLE_WRITES.items()
            if key not in given and not (key == "journal" and "j" in given)}


def _transactions_override() -> bool | None:
    value = os.environ.get(TRANSACTIONS_ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("on", "off"):
        return value == "on"
    raise InvalidArgumentError(f"{TRANSACTIONS_ENV} must be on, off or auto, got {value!r}")


async def open_mongo_store(url: str, *, transactions: bool | None = None, repair: bool = True,
                           durable: bool = True, **client_options: Any) -> MongoStore:
    """Connect, create collections and indexes (idempotent), finish interrupted changes.

    ``transactions``: None = the ``FRAZIL_MONGO_TRANSACTIONS`` environment
    variable (on/off/auto), else use them when the server supports them
    (replica set or sharded cluster); False forces the single-document
    fallback; True requires them (a standalone mongod then fails on the
    first transaction).

    ``durable`` (default): every write, pilot reports included, is
    acknowledged with the write concern ``w="majority", j=True`` (in the
    journal of a majority of the replica set: survives a power loss and the
    loss of a minority of members) unless the URL names its own ``w``/``journal``.
    """
    if transactions is None:
        transactions = _transactions_override()
    if durable:
        client_options = {**durable_write_options(url), **client_options}
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
