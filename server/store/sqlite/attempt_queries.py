"""Attempts across tasks (roles/attempt_queries.py) on SQLite: ``ix_attempts_end``
and ``ix_attempts_dataset_end`` (schema version 9) serve every query."""
from __future__ import annotations

import sqlite3
from typing import Sequence

from ..query import decode_cursor, encode_cursor
from ..records import Attempt
from .base import SQLiteBase
from .rows import ATTEMPT_COLS, to_attempt

_IN_CHUNK = 500  # SQLite's bound-parameter limit is far above; keeps statements small
INDEX_DDL = ('CREATE INDEX ix_attempts_end ON attempts("end") WHERE "end" IS NOT NULL;'
             'CREATE INDEX ix_attempts_dataset_end ON attempts(dataset_id, "end", status)')


def migrate_attempt_ends(conn: sqlite3.Connection) -> None:
    """Schema version 9: the two indexes (accounting by end time; a dataset's
    newest attempts and completion rate)."""
    for statement in INDEX_DDL.split(";"):
        conn.execute(statement)


class AttemptQueriesMixin(SQLiteBase):
    async def attempts_ended(self, since: str, until: str, *, after: str | None = None,
                             limit: int = 5000) -> tuple[list[Attempt], str | None]:
        where, args = '"end" >= ? AND "end" < ?', [since, until]
        if after is not None:
            end, seq = decode_cursor(after, 2)
            where += ' AND ("end", seq) > (?, ?)'
            args += [end, seq]
        rows = await self.db.read(lambda conn: conn.execute(
            f'SELECT seq, {ATTEMPT_COLS} FROM attempts INDEXED BY ix_attempts_end WHERE {where} '
            f'ORDER BY "end", seq LIMIT ?', (*args, limit)).fetchall())
        cursor = encode_cursor([rows[-1]["end"], rows[-1]["seq"]]) if len(rows) == limit else None
        return [to_attempt(r) for r in rows], cursor

    async def dataset_attempts(self, dataset_id: str, *, since: str | None = None, until: str | None = None,
                               after: str | None = None, limit: int = 2000) -> tuple[list[Attempt], str | None]:
        where, args = 'dataset_id = ? AND "end" >= ?', [dataset_id, since or ""]
        if until is not None:
            where += ' AND "end" < ?'
            args.append(until)
        if after is not None:
            end, status, seq = decode_cursor(after, 3)
            where += ' AND ("end", status, seq) > (?, ?, ?)'
            args += [end, status, seq]
        rows = await self.db.read(lambda conn: conn.execute(
            f'SELECT seq, {ATTEMPT_COLS} FROM attempts INDEXED BY ix_attempts_dataset_end WHERE {where} '
            f'ORDER BY "end", status, seq LIMIT ?', (*args, limit)).fetchall())
        last = rows[-1] if len(rows) == limit else None
        return [to_attempt(r) for r in rows], encode_cursor([last["end"], last["status"], last["seq"]]) if last else None

    async def recent_attempts(self, dataset_id: str, *, status: str | None = None,
                              limit: int = 1000) -> list[Attempt]:
        where, args = 'dataset_id = ? AND "end" IS NOT NULL', [dataset_id]
        if status is not None:
            where += " AND status = ?"
            args.append(status)
        rows = await self.db.read(lambda conn: conn.execute(
            f'SELECT {ATTEMPT_COLS} FROM attempts INDEXED BY ix_attempts_dataset_end WHERE {where} '
            f'ORDER BY "end" DESC LIMIT ?', (*args, limit)).fetchall())
        return [to_attempt(r) for r in rows]

    async def count_attempts_ended(self, dataset_id: str, since: str, *, status: str | None = None) -> int:
        where, args = 'dataset_id = ? AND "end" >= ?', [dataset_id, since]
        if status is not None:
            where += " AND status = ?"
            args.append(status)
        row = await self.db.read(lambda conn: conn.execute(
            f"SELECT count(*) FROM attempts INDEXED BY ix_attempts_dataset_end WHERE {where}", args).fetchone())
        return int(row[0])

    async def last_attempts(self, task_ids: Sequence[str]) -> dict[str, Attempt]:
        ids = list(dict.fromkeys(task_ids))
        out: dict[str, Attempt] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = await self.db.read(lambda conn, marks=marks, chunk=chunk: conn.execute(
                f"""SELECT {ATTEMPT_COLS} FROM attempts a WHERE task_id IN ({marks})
                    AND attempt = (SELECT max(attempt) FROM attempts b WHERE b.task_id = a.task_id)""",
                chunk).fetchall())
            out.update((r["task_id"], to_attempt(r)) for r in rows)
        return out
