"""Dependency release (idle -> waiting) and queueing (waiting -> queued)."""
from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from .. import checks
from ..records import QueueClass, nowstr
from .base import SQLiteBase
from .listing import Where
from .transitions import MOVE_COLS, move_tasks


class SchedulingMixin(SQLiteBase):

    async def release_dependencies(self, limit: int = 10_000, dataset_id: str | None = None) -> int:
        checks.count("limit", limit)

        def op(conn: sqlite3.Connection) -> int:
            # deps_pending is maintained on every completion, so the partial
            # index over (idle, nothing pending) holds exactly the releasable
            # tasks: no scan of tasks still waiting for their dependencies.
            where = Where().add("status = 'idle'").add("deps_pending = 0")
            # A suspended (or finished) dataset's tasks stay idle until it runs again.
            where.add("dataset_id IN (SELECT dataset_id FROM datasets WHERE status = 'processing')")
            if dataset_id is not None:
                where.add("dataset_id = ?", dataset_id)
            rows = conn.execute(f"""SELECT {MOVE_COLS} FROM tasks INDEXED BY ix_tasks_releasable
                                    WHERE {where.sql()} ORDER BY seq LIMIT ?""", (*where.params, limit)).fetchall()
            return move_tasks(conn, rows, "waiting", nowstr())
        return await self.db.write(op)

    async def queue_tasks(self, num: int, *, dataset_deprio: Sequence[str] = (),
                          dataset_id: str | None = None) -> list[str]:
        checks.count("num", num)
        deprio = list(dict.fromkeys(dataset_deprio))

        def op(conn: sqlite3.Connection) -> list[str]:
            now = nowstr()
            taken: list[str] = []
            # IceProd's order: exclude every deprioritised dataset, then allow
            # them back one at a time from the end of the list (least loaded).
            for allowed_back in range(len(deprio) + 1):
                want = num - len(taken)
                if want <= 0:
                    break
                excluded = deprio[:len(deprio) - allowed_back]
                where = Where().add("status = 'waiting'")
                if dataset_id is not None:
                    where.add("dataset_id = ?", dataset_id)
                if excluded:
                    where.add(f"dataset_id NOT IN ({','.join('?' * len(excluded))})", *excluded)
                rows = conn.execute(f"""SELECT {MOVE_COLS} FROM tasks INDEXED BY ix_tasks_waiting
                                        WHERE {where.sql()} ORDER BY priority DESC, seq LIMIT ?""",
                                    (*where.params, want)).fetchall()
                move_tasks(conn, rows, "queued", now)
                taken.extend(r["task_id"] for r in rows)
            return taken
        return await self.db.write(op)

    async def queued_classes(self) -> list[QueueClass]:
        rows = await self.db.read(lambda conn: conn.execute(
            """SELECT resource_class, cpu, gpu, memory, disk, time, site, os, queued FROM resource_classes
               WHERE queued > 0 ORDER BY class_id""").fetchall())
        return [QueueClass(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8]) for r in rows]
