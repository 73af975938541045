"""Stored credentials (secrets stay encrypted blobs here)."""
from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from .. import checks
from ..records.credentials import Credential
from .base import SQLiteBase

_COLUMNS = ("owner_kind, owner, url, type, secret, transfer_prefix, scope, buckets, expiration, refreshable, "
            "last_use, last_refresh, refresh_error, created")


def _row(row: sqlite3.Row) -> Credential:
    return Credential(owner_kind=row["owner_kind"], owner=row["owner"], url=row["url"], type=row["type"],
                      secret=row["secret"], transfer_prefix=row["transfer_prefix"], scope=row["scope"],
                      buckets=json.loads(row["buckets"]), expiration=row["expiration"],
                      refreshable=bool(row["refreshable"]), last_use=row["last_use"],
                      last_refresh=row["last_refresh"], refresh_error=row["refresh_error"],
                      created=row["created"])


class CredentialsMixin(SQLiteBase):

    async def put_credential(self, credential: Credential) -> bool:
        checks.credential(credential)
        c = credential
        values = (c.owner_kind, c.owner, c.url, c.type, c.secret, c.transfer_prefix, c.scope,
                  json.dumps(list(c.buckets)), c.expiration, int(c.refreshable), c.last_use, c.last_refresh,
                  c.refresh_error, c.created)

        def op(conn: sqlite3.Connection) -> bool:
            existed = conn.execute("SELECT 1 FROM credentials WHERE owner_kind = ? AND owner = ? AND url = ?",
                                   values[:3]).fetchone() is not None
            conn.execute(f"INSERT OR REPLACE INTO credentials ({_COLUMNS}) VALUES "
                         f"({', '.join('?' * 14)})", values)
            return not existed
        return await self.db.write(op)

    async def get_credential(self, owner_kind: str, owner: str, url: str) -> Credential | None:
        row = await self.db.read(lambda conn: conn.execute(
            "SELECT * FROM credentials WHERE owner_kind = ? AND owner = ? AND url = ?",
            (owner_kind, owner, url)).fetchone())
        return None if row is None else _row(row)

    async def list_credentials(self, owner_kind: str, owners: Sequence[str]) -> list[Credential]:
        names = list(owners)
        if not names:
            return []
        marks = ", ".join("?" * len(names))
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT * FROM credentials WHERE owner_kind = ? AND owner IN ({marks}) ORDER BY owner, url",
            (owner_kind, *names)).fetchall())
        return [_row(r) for r in rows]

    async def delete_credentials(self, owner_kind: str, owner: str, url: str | None = None) -> int:
        if url is None:
            return await self.db.write(lambda conn: conn.execute(
                "DELETE FROM credentials WHERE owner_kind = ? AND owner = ?", (owner_kind, owner)).rowcount)
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM credentials WHERE owner_kind = ? AND owner = ? AND url = ?",
            (owner_kind, owner, url)).rowcount)

    async def credentials_to_refresh(self, expiring_before: float, used_after: float,
                                     limit: int = 100) -> list[Credential]:
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT * FROM credentials WHERE refreshable = 1 AND expiration IS NOT NULL AND expiration < ? "
            "AND (last_use IS NULL OR last_use > ?) ORDER BY expiration LIMIT ?",
            (expiring_before, used_after, int(limit))).fetchall())
        return [_row(r) for r in rows]

    async def record_refresh(self, credential: Credential, *, secret: str | None, expiration: float | None,
                             when: float, error: str = "") -> bool:
        key = (credential.owner_kind, credential.owner, credential.url, credential.secret)
        if secret is not None:
            return await self.db.write(lambda conn: conn.execute(
                "UPDATE credentials SET secret = ?, expiration = ?, last_refresh = ?, refresh_error = '' "
                "WHERE owner_kind = ? AND owner = ? AND url = ? AND secret = ?",
                (secret, expiration, when, *key)).rowcount > 0)
        return await self.db.write(lambda conn: conn.execute(
            "UPDATE credentials SET refresh_error = ? WHERE owner_kind = ? AND owner = ? AND url = ? "
            "AND secret = ?", (error, *key)).rowcount > 0)

    async def touch_credential(self, credential: Credential, when: float) -> None:
        await self.db.write(lambda conn: conn.execute(
            "UPDATE credentials SET last_use = ? WHERE owner_kind = ? AND owner = ? AND url = ?",
            (when, credential.owner_kind, credential.owner, credential.url)))
