"""Resource classes: the small table that makes the claim cost independent of
the queue length.

Every task belongs to the class of its shape (binned resources + site + os,
see ``rules.task_shape``). Per class the table keeps the ceiling (the most
any task of the class may need, from ``common.resources.class_ceiling``),
the smallest needs seen (to skip classes that cannot fit), the number of
queued tasks and ``top``, an upper bound of their best priority. Every change
into or out of ``queued`` updates them in the same transaction.

``top`` is only an upper bound: raising it is cheap (max on enqueue or on a
priority change), lowering it needs a probe, so the claim lowers it when a
probe shows the class's real best (see claim.py). A claim reads the few
classes that fit the pilot, best ``top`` first, and stops probing as soon as
no remaining class can beat the best task found.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Mapping

from common.resources import class_ceiling

from ..rules import TaskShape


class ClassCache:
    """class_key -> class_id for the duration of one write operation (bulk
    creates see a handful of shapes among 100,000 tasks)."""

    def __init__(self, conn: sqlite3.Connection, prefetch: bool = False) -> None:
        self.conn = conn
        self._ids: dict[str, int] = {}
        self._mins: dict[int, tuple[float, float, float, float]] = {}
        self._seen: set[TaskShape] = set()
        if prefetch:  # bulk paths: one read instead of one per shape
            for r in conn.execute("""SELECT class_key, class_id, min_cpu, min_memory, min_disk, min_time
                                     FROM resource_classes"""):
                self._ids[r[0]] = r[1]
                self._mins[r[1]] = (r[2], r[3], r[4], r[5])

    def class_id(self, shape: TaskShape) -> int:
        """The class of ``shape``, created on first use; lowers the class's
        minimum needs when this shape needs less."""
        class_id = self._ids.get(shape.class_key)
        if class_id is None:
            row = self.conn.execute("SELECT class_id FROM resource_classes WHERE class_key = ?",
                                    (shape.class_key,)).fetchone()
            if row is None:
                ceiling = class_ceiling(shape.resource_class)
                need = shape.need
                class_id = self.conn.execute(
                    """INSERT INTO resource_classes (class_key, resource_class, cpu, gpu, memory, disk, time,
                           min_cpu, min_memory, min_disk, min_time, site, os, os_key, queued, top)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)""",
                    (shape.class_key, shape.resource_class, ceiling.cpu, ceiling.gpu, ceiling.memory,
                     ceiling.disk, ceiling.time, need.cpu, need.memory, need.disk, need.time, shape.site,
                     json.dumps(list(shape.os)), os_key(shape.os))).lastrowid
                assert class_id is not None
                self._ids[shape.class_key] = class_id
                self._seen.add(shape)
                return class_id
            class_id = int(row[0])
            self._ids[shape.class_key] = class_id
        if shape not in self._seen:
            self._seen.add(shape)
            need = shape.need
            mins = self._mins.get(class_id)
            if mins is not None and (mins[0] <= need.cpu and mins[1] <= need.memory and mins[2] <= need.disk
                                     and mins[3] <= need.time):
                return class_id
            self.conn.execute(
                """UPDATE resource_classes SET min_cpu = min(min_cpu, ?), min_memory = min(min_memory, ?),
                       min_disk = min(min_disk, ?), min_time = min(min_time, ?) WHERE class_id = ?""",
                (need.cpu, need.memory, need.disk, need.time, class_id))
        return class_id


def os_key(os_list: tuple[str, ...] | list[str]) -> str:
    """``,el8,el9,`` (or '' for any os): lets SQL test membership with instr()."""
    return "," + ",".join(sorted(os_list)) + "," if os_list else ""


def adjust_queued(conn: sqlite3.Connection, deltas: Counter[int], tops: Mapping[int, float] | None = None) -> None:
    """Apply {class_id: +/- n} to the queued counts and raise ``top`` to the best
    priority that entered each class (same transaction as the moves)."""
    rows = [(delta, class_id) for class_id, delta in deltas.items() if delta]
    if rows:
        conn.executemany("UPDATE resource_classes SET queued = queued + ? WHERE class_id = ?", rows)
    if tops:
        conn.executemany("UPDATE resource_classes SET top = max(top, ?) WHERE class_id = ?",
                         [(p, class_id) for class_id, p in tops.items()])


def refresh_tops(conn: sqlite3.Connection) -> None:
    """Recompute ``top`` exactly for classes with queued tasks (after bulk
    priority changes, which may raise any class)."""
    conn.execute("""UPDATE resource_classes SET top = coalesce(
                        (SELECT priority FROM tasks INDEXED BY ix_tasks_claim
                         WHERE status = 'queued' AND class_id = resource_classes.class_id
                         ORDER BY priority DESC LIMIT 1), 0)
                    WHERE queued > 0""")
