"""Connecting to MongoDB and learning what the server can do.

The store opens one ``AsyncMongoClient`` per process and works in one database,
named by the URL's path (``mongodb://host/NAME``), ``frazil`` when the URL has none.
Whether multi-document transactions are available is decided once, at start, from
the server's ``hello`` reply: only replica-set members and ``mongos`` routers run
them; a standalone ``mongod`` (and the ``nx-27017`` test server) do not, and the
store then uses its ordered single-document fallback (see ``txn.py``).
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError

from ..interface import StoreError

DEFAULT_DATABASE = "frazil"

# Connection options frazil sets unless the URL says otherwise: fail fast when the
# server is down (the pymongo default of 30 s makes a wrong URL look like a hang).
_DEFAULT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 10_000,
    "tz_aware": False,
}


class MongoConnectionError(StoreError, RuntimeError):
    """The MongoDB URL is malformed or the server cannot be reached."""


@dataclass(frozen=True)
class ServerInfo:
    """What the store learned about the server at start."""

    version: str
    transactions: bool
    topology: str  # "replicaset", "sharded" or "standalone"


def database_name(url: str) -> str:
    """The database a ``mongodb://`` URL names, ``frazil`` when it names none.

    Parsed by hand: pymongo's URI parser resolves ``mongodb+srv://`` names in
    DNS, which a name lookup must not do.
    """
    _, sep, rest = url.partition("://")
    if not sep:
        raise MongoConnectionError(f"not a MongoDB URL: {url!r}")
    _, slash, path = rest.partition("/")
    name = urllib.parse.unquote(path.split("?", 1)[0]) if slash else ""
    if any(c in name for c in '/\\. "$') or len(name) > 63:
        raise MongoConnectionError(f"invalid MongoDB database name {name!r} in {url!r}")
    return name or DEFAULT_DATABASE


def make_client(url: str, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """An async client for ``url``; nothing is sent until the first command."""
    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise MongoConnectionError(
            f"a MongoDB store URL must start with mongodb:// or mongodb+srv://, got {url!r}"
        )
    merged = {**_DEFAULT_OPTIONS, **options}
    try:
        return AsyncMongoClient(url, **merged)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise MongoConnectionError(f"not a valid MongoDB URL {url!r}: {exc}") from exc


async def probe_server(db: AsyncDatabase[dict[str, Any]]) -> ServerInfo:
    """Ask the server who it is; raises MongoConnectionError when it does not answer."""
    try:
        hello = await db.client.admin.command("hello")
        build = await db.client.admin.command("buildInfo")
    except PyMongoError as exc:
        raise MongoConnectionError(f"cannot reach MongoDB for database {db.name!r}: {exc}") from exc
    if hello.get("msg") == "isdbgrid":
        topology = "sharded"
    elif hello.get("setName"):
        topology = "replicaset"
    else:
        topology = "standalone"
    return ServerInfo(
        version=str(build.get("version", "?")),
        transactions=topology != "standalone",
        topology=topology,
    )
