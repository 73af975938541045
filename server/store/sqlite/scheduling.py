"""Dependency release (idle -> waiting) and queueing (waiting -> queued).

Both work per processing dataset on indexes that lead with ``dataset_id``,
so a round reads the tasks it moves plus one index probe per dataset,
whatever the backlog (a dataset of 1,000,000 waiting tasks included).
"""
from __future__ import annotations

import heapq
import json
import sqlite3
from typing import Any, Callable, Iterator, Mapping, Sequence

from common.resources import Resources

from .. import checks
from ..records import QueueClass, nowstr
from ..rules import task_priority_from
from .base import SQLiteBase
from .classes import refresh_tops
from .transitions import MOVE_COLS, move_tasks

FETCH = 256
"""Rows fetched at a time from each dataset's waiting index while merging."""

_WAITING = f"""SELECT {MOVE_COLS}, prio_offset FROM tasks INDEXED BY ix_tasks_waiting
               WHERE dataset_id = ? AND status = 'waiting' AND not_before IS NULL ORDER BY prio_offset DESC, seq"""
_RIPE = """UPDATE tasks INDEXED BY ix_tasks_not_before SET not_before = NULL WHERE not_before <= ?"""
"""Paced retries whose time has come join the waiting index (a range of the
partial ``not_before`` index: the ones still held back are not read)."""
_NEXT = "SELECT min(not_before) FROM tasks INDEXED BY ix_tasks_not_before WHERE not_before > 0"
_RELEASABLE = f"""SELECT {MOVE_COLS} FROM tasks INDEXED BY ix_tasks_releasable
                  WHERE dataset_id = ? AND status = 'idle' AND deps_pending = 0 ORDER BY seq LIMIT ?"""
_PROCESSING = "SELECT dataset_id, task_base FROM datasets WHERE status = 'processing' ORDER BY seq"
_REPRICE = """UPDATE tasks INDEXED BY ix_tasks_dataset_status SET priority = min(1.0, max(0.0, ? + prio_offset))
              WHERE dataset_id = ? AND status = 'queued'"""


def processing_datasets(conn: sqlite3.Connection, dataset_id: str | None) -> list[tuple[str, float]]:
    """(dataset_id, task_base) of the processing datasets (or of the one asked)."""
    return [(r[0], r[1]) for r in conn.execute(_PROCESSING) if dataset_id is None or r[0] == dataset_id]


def _waiting(conn: sqlite3.Connection, dataset_id: str, base: float) -> Iterator[tuple[Any, ...]]:
    """One dataset's waiting tasks, best first, as merge keys (-priority,
    -offset, seq, row): the index order is offset desc, seq, and the
    priority (base + offset, clamped) follows it."""
    cursor = conn.execute(_WAITING, (dataset_id,))
    try:
        while rows := cursor.fetchmany(FETCH):
            for r in rows:
                yield (-task_priority_from(base, r["prio_offset"]), -r["prio_offset"], r["seq"], r)
    finally:
        cursor.close()


def take_best(conn: sqlite3.Connection, datasets: Sequence[tuple[str, float]], want: int) -> list[tuple[Any, ...]]:
    """The ``want`` best waiting tasks of ``datasets``: a k-way merge of their
    index ranges, reading about ``want`` rows (plus one fetch per dataset)."""
    ranges = [_waiting(conn, d, base) for d, base in datasets]
    best = [item for _, item in zip(range(want), heapq.merge(*ranges))]
    for r in ranges:
        r.close()  # closes the cursors still open
    return best


class SchedulingMixin(SQLiteBase):

    async def release_dependencies(self, limit: int = 10_000, dataset_id: str | None = None) -> int:
        checks.count("limit", limit)

        def op(conn: sqlite3.Connection) -> int:
            # deps_pending is maintained on every completion, so the partial
            # index over (idle, nothing pending) holds exactly the releasable
            # tasks: no scan of tasks still waiting for their dependencies.
            # It leads with dataset_id: a suspended dataset's releasable
            # tasks (they stay idle until it runs again) are never walked.
            moved = 0
            now = nowstr()
            for ds, _ in processing_datasets(conn, dataset_id):
                if moved >= limit:
                    break
                rows = conn.execute(_RELEASABLE, (ds, limit - moved)).fetchall()
                moved += move_tasks(conn, rows, "waiting", now)
            return moved
        return await self.db.write(op)

    async def queue_tasks(self, num: int, *, dataset_deprio: Sequence[str] = (),
                          dataset_id: str | None = None) -> list[str]:
        checks.count("num", num)
        deprio = list(dict.fromkeys(dataset_deprio))

        def op(conn: sqlite3.Connection) -> list[str]:
            conn.execute(_RIPE, (self.clock(),))
            now = nowstr()
            taken: list[str] = []
            datasets = processing_datasets(conn, dataset_id)
            base = dict(datasets)
            # IceProd's order: every dataset not deprioritised first, then
            # the deprioritised ones one at a time from the end of the list
            # (least loaded first).
            groups = [[d for d in datasets if d[0] not in deprio]]
            groups.extend([(d, base[d])] for d in reversed(deprio) if d in base)
            for group in groups:
                want = num - len(taken)
                if want <= 0:
                    break
                best = take_best(conn, group, want)
                if not best:
                    continue
                conn.executemany("UPDATE tasks SET priority = ? WHERE seq = ?", [(-k[0], k[2]) for k in best])
                rows = [{**dict(k[3]), "priority": -k[0]} for k in best]
                move_tasks(conn, rows, "queued", now)
                taken.extend(r["task_id"] for r in rows)
            return taken
        return await self.db.write(op)

    async def next_not_before(self) -> float | None:
        row = await self.db.read(lambda conn: conn.execute(_NEXT).fetchone())
        return None if row is None or row[0] is None else float(row[0])

    async def set_priority_bases(self, bases: Mapping[str, float]) -> int:
        items = [(float(b), d) for d, b in bases.items()]

        def op(conn: sqlite3.Connection) -> int:
            changed = 0
            for value, ds in items:
                if conn.execute("UPDATE datasets SET task_base = ? WHERE dataset_id = ? AND task_base != ?",
                                (value, ds, value)).rowcount:
                    changed += 1
                    # the waiting tasks follow through task_base; the queued
                    # ones (at most the queue target) carry their own value
                    conn.execute(_REPRICE, (value, ds))
            if changed:
                refresh_tops(conn)
            return changed
        return await self.db.write(op)

    async def queued_classes(self) -> list[QueueClass]:
        rows = await self.db.read(lambda conn: conn.execute(
            """SELECT resource_class, cpu, gpu, memory, disk, time, site, os, queued, class_key,
                      min_cpu, min_memory, min_disk, min_time FROM resource_classes
               WHERE queued > 0 ORDER BY class_id""").fetchall())
        return [QueueClass(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8], r[9],
                           Resources(cpu=int(r[10]), gpu=int(r[2]), memory=r[11], disk=r[12], time=r[13]))
                for r in rows]

    async def queued_by_dataset(self, class_keys: Sequence[str]) -> dict[str, dict[str, int]]:
        def count(rows: list[sqlite3.Row]) -> dict[str, int] | None:
            return {r[0]: int(r[1]) for r in rows} or None
        return await self.db.read(lambda conn: _per_class(
            conn, class_keys, "t.dataset_id, count(*)", "GROUP BY t.dataset_id", count))

    async def class_batchsys(self, class_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        def batchsys(rows: list[sqlite3.Row]) -> dict[str, Any] | None:
            return dict(json.loads(rows[0][0] or "{}").get("batchsys") or {}) if rows else None
        return await self.db.read(lambda conn: _per_class(conn, class_keys, "t.requirements", "LIMIT 1", batchsys))


def _per_class(conn: sqlite3.Connection, class_keys: Sequence[str], columns: str, tail: str,
               read: Callable[[list[sqlite3.Row]], Any]) -> dict[str, Any]:
    """class_key -> ``read`` of the queued tasks of each class (through the claim index); None is left out."""
    out: dict[str, Any] = {}
    for key in class_keys:
        rows = conn.execute(
            f"""SELECT {columns} FROM resource_classes c
                JOIN tasks t INDEXED BY ix_tasks_claim ON t.class_id = c.class_id AND t.status = 'queued'
                WHERE c.class_key = ? {tail}""", (key,)).fetchall()
        value = read(rows)
        if value is not None:
            out[key] = value
    return out
