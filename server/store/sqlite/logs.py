"""Logs. Small logs live inline in ``logs.data``; a log over 1 MB (by add or
by appending) moves to ``log_chunks`` so listing and task pages never drag
megabytes through the hot table, and is reassembled on read."""
from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from .. import checks
from ..interface import NotFoundError
from ..query import ListOptions, LogFilter, Page
from ..records import Log, LogRef, NewLog, nowstr
from .base import SQLiteBase
from .listing import Where, paginate
from .rows import to_log

INLINE_LIMIT = 1_000_000
"""Characters kept inline (IceProd moves logs over 1 MB to S3)."""
CHUNK = 256_000
"""Characters per stored chunk."""

LOG_COLS = "log_id, name, data, size, chunked, timestamp, dataset_id, task_id, attempt"


def _chunks(data: str) -> list[str]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]


def _store_chunks(conn: sqlite3.Connection, log_id: str, first: int, data: str) -> None:
    conn.executemany("INSERT INTO log_chunks (log_id, n, data) VALUES (?, ?, ?)",
                     [(log_id, first + i, part) for i, part in enumerate(_chunks(data))])


def _data(conn: sqlite3.Connection, row: sqlite3.Row) -> str:
    if not row["chunked"]:
        return row["data"] or ""
    return "".join(r[0] for r in conn.execute("SELECT data FROM log_chunks WHERE log_id = ? ORDER BY n",
                                              (row["log_id"],)))


def _logs(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row]) -> list[Log]:
    return [to_log(r, _data(conn, r)) for r in rows]


class LogsMixin(SQLiteBase):

    async def add_log(self, log: NewLog) -> str:
        checks.text("log data", log.data)

        def op(conn: sqlite3.Connection) -> str:
            big = len(log.data) > INLINE_LIMIT
            conn.execute(f"INSERT INTO logs ({LOG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (log.log_id, log.name, None if big else log.data, len(log.data), int(big), nowstr(),
                          log.dataset_id, log.task_id, log.attempt))
            if big:
                _store_chunks(conn, log.log_id, 0, log.data)
            return log.log_id
        return await self.db.write(op)

    async def append_log(self, log_id: str, chunk: str) -> int:
        checks.text("a log chunk", chunk)

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT data, size, chunked FROM logs WHERE log_id = ?", (log_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"log {log_id} not found")
            size = row["size"] + len(chunk)
            if row["chunked"]:
                nxt = conn.execute("SELECT coalesce(max(n), -1) + 1 FROM log_chunks WHERE log_id = ?",
                                   (log_id,)).fetchone()[0]
                _store_chunks(conn, log_id, nxt, chunk)
                conn.execute("UPDATE logs SET size = ? WHERE log_id = ?", (size, log_id))
            elif size > INLINE_LIMIT:
                _store_chunks(conn, log_id, 0, (row["data"] or "") + chunk)
                conn.execute("UPDATE logs SET data = NULL, chunked = 1, size = ? WHERE log_id = ?", (size, log_id))
            else:
                conn.execute("UPDATE logs SET data = data || ?, size = ? WHERE log_id = ?", (chunk, size, log_id))
            return size
        return await self.db.write(op)

    async def get_log(self, log_id: str) -> Log | None:
        def op(conn: sqlite3.Connection) -> Log | None:
            row = conn.execute(f"SELECT {LOG_COLS} FROM logs WHERE log_id = ?", (log_id,)).fetchone()
            return None if row is None else _logs(conn, [row])[0]
        return await self.db.read(op)

    async def list_logs(self, filter: LogFilter = LogFilter(), opts: ListOptions = ListOptions()) -> Page:
        where = Where()
        if filter.dataset_id is not None:
            where.add("dataset_id = ?", filter.dataset_id)
        if filter.task_id is not None:
            where.add("task_id = ?", filter.task_id)
        if filter.from_time is not None:
            where.add("timestamp >= ?", filter.from_time)
        if filter.to_time is not None:
            where.add("timestamp <= ?", filter.to_time)
        where.any_of("name", filter.name)
        return await self.db.read(lambda conn: paginate(
            conn, table="logs", columns=LOG_COLS, where=where, opts=opts,
            to_doc=lambda r: to_log(r, _data(conn, r)).to_doc(), id_field="log_id"))

    async def task_logs(self, task_id: str, *, num: int | None = None, group: bool = False,
                        order: str = "desc") -> list[Log]:
        checks.task_logs_args(order, num)

        def op(conn: sqlite3.Connection) -> list[Log]:
            rows = conn.execute(f"SELECT {LOG_COLS} FROM logs WHERE task_id = ? ORDER BY timestamp DESC, seq DESC",
                                (task_id,)).fetchall()
            if group:  # newest of each name
                seen: set[str] = set()
                rows = [r for r in rows if not (r["name"] in seen or seen.add(r["name"]))]
            if order == "asc":
                rows.reverse()
            if num is not None:
                rows = rows[:num]
            return _logs(conn, rows)
        return await self.db.read(op)

    async def delete_log(self, log_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM log_chunks WHERE log_id = ?", (log_id,))
            return conn.execute("DELETE FROM logs WHERE log_id = ?", (log_id,)).rowcount > 0
        return await self.db.write(op)

    async def delete_logs(self, *, dataset_id: str | None = None, task_id: str | None = None) -> int:
        checks.log_selection(dataset_id, task_id)
        where = Where()
        if dataset_id is not None:
            where.add("dataset_id = ?", dataset_id)
        if task_id is not None:
            where.add("task_id = ?", task_id)

        def op(conn: sqlite3.Connection) -> int:
            conn.execute(f"""DELETE FROM log_chunks WHERE log_id IN
                             (SELECT log_id FROM logs WHERE {where.sql()} AND chunked = 1)""", where.params)
            return conn.execute(f"DELETE FROM logs WHERE {where.sql()}", where.params).rowcount
        return await self.db.write(op)

    async def logs_before(self, before: str, *, name: str | None = None, dataset_id: str | None = None,
                          after: tuple[str, str] | None = None, limit: int = 1000) -> list[LogRef]:
        checks.count("limit", limit)
        where = Where()
        if name is not None:
            where.add("name = ?", name)
        if dataset_id is not None:
            where.add("dataset_id = ?", dataset_id)
        where.add("timestamp < ?", before)
        if after is not None:
            where.add("(timestamp, log_id) > (?, ?)", *after)
        params: list[Any] = [*where.params, limit]

        def op(conn: sqlite3.Connection) -> list[LogRef]:
            rows = conn.execute(f"""SELECT log_id, name, timestamp, dataset_id, task_id, attempt, size FROM logs
                                    WHERE {where.sql()} ORDER BY timestamp, log_id LIMIT ?""", params).fetchall()
            return [LogRef(*row) for row in rows]
        return await self.db.read(op)

    async def log_names(self) -> dict[str, tuple[int, str]]:
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT name, count(*), min(timestamp) FROM logs GROUP BY name ORDER BY name").fetchall())
        return {name: (count, oldest) for name, count, oldest in rows}

    async def delete_log_ids(self, log_ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(log_ids))
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))

        def op(conn: sqlite3.Connection) -> int:
            conn.execute(f"DELETE FROM log_chunks WHERE log_id IN ({marks})", ids)
            return conn.execute(f"DELETE FROM logs WHERE log_id IN ({marks})", ids).rowcount
        return await self.db.write(op)
