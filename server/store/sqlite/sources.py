"""Module sources: content-addressed blobs and each config version's manifest."""
from __future__ import annotations

import sqlite3
from typing import Mapping, Sequence

from common.sources import sha512_of

from .. import checks
from ..errors import NotFoundError
from .base import SQLiteBase
from .datasets import get_dataset_row


class SourcesMixin(SQLiteBase):

    async def put_source_blobs(self, blobs: Sequence[bytes]) -> list[str]:
        rows = [(sha512_of(bytes(b)), bytes(b)) for b in blobs]
        if rows:
            await self.db.write(lambda conn: conn.executemany(
                "INSERT OR IGNORE INTO source_blobs (sha512, content) VALUES (?, ?)", rows))
        return [digest for digest, _ in rows]

    async def set_config_sources(self, dataset_id: str, version: int, manifest: Mapping[str, str]) -> None:
        files = checks.source_manifest(manifest)
        number = checks.whole_number("version", version)

        def op(conn: sqlite3.Connection) -> None:
            if get_dataset_row(conn, dataset_id) is None:
                raise NotFoundError(f"dataset {dataset_id} not found")
            stored = {digest for digest in set(files.values())
                      if conn.execute("SELECT 1 FROM source_blobs WHERE sha512 = ?", (digest,)).fetchone()}
            checks.blobs_stored(files, stored)
            conn.execute("DELETE FROM config_sources WHERE dataset_id = ? AND version = ?", (dataset_id, number))
            # an empty manifest is kept as one marker row, so it still overrides an older one
            conn.executemany("INSERT INTO config_sources (dataset_id, version, path, sha512) VALUES (?, ?, ?, ?)",
                             [(dataset_id, number, path, digest) for path, digest in files.items()]
                             or [(dataset_id, number, "", "")])
        await self.db.write(op)

    async def get_config_sources(self, dataset_id: str, version: int | None = None) -> dict[str, str]:
        def op(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                """SELECT path, sha512 FROM config_sources WHERE dataset_id = ?1 AND version =
                   (SELECT max(version) FROM config_sources WHERE dataset_id = ?1 AND version <= ?2)""",
                (dataset_id, version if version is not None else 2 ** 62)).fetchall()
        return {row["path"]: row["sha512"] for row in await self.db.read(op) if row["path"]}

    async def get_source_blob(self, dataset_id: str, sha512: str) -> bytes | None:
        row = await self.db.read(lambda conn: conn.execute(
            """SELECT content FROM source_blobs WHERE sha512 = ?1
               AND EXISTS (SELECT 1 FROM config_sources WHERE dataset_id = ?2 AND sha512 = ?1)""",
            (sha512, dataset_id)).fetchone())
        return None if row is None else bytes(row["content"])
