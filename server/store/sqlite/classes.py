"""Resource classes: the small table that makes the claim cost independent of
the queue length.

Every task belongs to the class of its shape (binned resources + site + os,
see ``rules.task_shape``). Per class the table keeps the ceiling (the most
any task of the class may need, from ``common.resources.class_ceiling``),
the smallest needs seen (to skip classes that cannot fit), and the number of
queued tasks — updated in the same transaction as every status change into
or out of ``queued``. A claim reads the few classes with queued tasks, keeps
those that fit the pilot, and takes the top task of each by the
``(class_id, priority desc)`` index.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass

from common.resources import class_ceiling

from ..rules import TaskShape


class ClassCache:
    """class_key -> class_id for the duration of one write operation (bulk
    creates see a handful of shapes among 100,000 tasks)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._ids: dict[str, int] = {}
        self._seen: set[TaskShape] = set()

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
                           min_cpu, min_memory, min_disk, min_time, site, os, queued)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)""",
                    (shape.class_key, shape.resource_class, ceiling.cpu, ceiling.gpu, ceiling.memory,
                     ceiling.disk, ceiling.time, need.cpu, need.memory, need.disk, need.time, shape.site,
                     json.dumps(list(shape.os)))).lastrowid
                assert class_id is not None
            else:
                class_id = int(row[0])
            self._ids[shape.class_key] = class_id
        if shape not in self._seen:
            self._seen.add(shape)
            need = shape.need
            self.conn.execute(
                """UPDATE resource_classes SET min_cpu = min(min_cpu, ?), min_memory = min(min_memory, ?),
                       min_disk = min(min_disk, ?), min_time = min(min_time, ?) WHERE class_id = ?""",
                (need.cpu, need.memory, need.disk, need.time, class_id))
        return class_id


def adjust_queued(conn: sqlite3.Connection, deltas: Counter[int]) -> None:
    """Apply {class_id: +/- n} to the queued counts (same transaction as the moves)."""
    rows = [(delta, class_id) for class_id, delta in deltas.items() if delta]
    if rows:
        conn.executemany("UPDATE resource_classes SET queued = queued + ? WHERE class_id = ?", rows)


@dataclass(frozen=True)
class ClassRow:
    class_id: int
    resource_class: str
    cpu: int
    gpu: int
    memory: float
    disk: float
    time: float
    min_cpu: int
    min_memory: float
    min_disk: float
    min_time: float
    site: str
    os: tuple[str, ...]
    queued: int


def queued_classes(conn: sqlite3.Connection) -> list[ClassRow]:
    """Classes with queued tasks (a handful of rows, whatever the queue length)."""
    rows = conn.execute(
        """SELECT class_id, resource_class, cpu, gpu, memory, disk, time, min_cpu, min_memory, min_disk,
                  min_time, site, os, queued FROM resource_classes WHERE queued > 0""").fetchall()
    return [ClassRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                     tuple(json.loads(r[12])), r[13]) for r in rows]
