"""Tasks: queries, counts, guarded status changes, requirements, priorities."""
from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from typing import Any, Sequence

from .. import checks
from ..query import TASK_SORT_FIELDS, ListOptions, Page, TaskFilter, check_statuses
from ..records import Task, nowstr
from ..rules import allowed_from, canonical_json, checked_requirements, task_shape
from common import states
from .base import SQLiteBase
from .classes import ClassCache, adjust_queued, refresh_tops
from .listing import Where, paginate
from .rows import TASK_COLS, TASK_PRIORITY, dumps, to_task
from .transitions import MOVE_COLS, move_tasks

SORTABLE = {name: TASK_PRIORITY if name == "priority" else name for name in TASK_SORT_FIELDS}


def task_where(f: TaskFilter) -> Where:
    check_statuses(f.status, set(states.TASK_STATUSES), "task")
    where = Where()
    if f.dataset_id is not None:
        where.add("dataset_id = ?", f.dataset_id)
    if f.job_id is not None:
        where.add(JOB_OF_TASK, f.job_id)
    if f.job_index is not None:
        where.add("job_index = ?", f.job_index)
    if f.site is not None:
        where.add("substr(site, 1, ?) = ?", len(f.site), f.site)
    if f.gpu is not None:
        where.add("req_gpu > 0" if f.gpu else "req_gpu = 0")
    return where.any_of("status", f.status).any_of("name", f.name).any_of("task_id", f.task_ids)


JOB_OF_TASK = "(dataset_id, job_index) = (SELECT dataset_id, job_index FROM jobs WHERE job_id = ?)"
"""Tasks of a job through the (dataset_id, job_index) index: one index serves
job roll-ups, job filters and per-job counts instead of a second index on
job_id that every task insert would pay for. It holds no status, so status
changes (the claim path) never touch it."""


def jobs_tasks(job_ids: Sequence[str]) -> tuple[str, list[Any]]:
    """Condition selecting the tasks of many jobs (one parameter, any count)."""
    return ("(dataset_id, job_index) IN (SELECT dataset_id, job_index FROM jobs "
            "WHERE job_id IN (SELECT value FROM json_each(?)))", [json.dumps(list(job_ids))])


def _replace_requirements(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """IceProd's POST bulk_requirements: numbers only grow, absent keys go."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        numeric = (isinstance(value, (int, float)) and not isinstance(value, bool)
                   and isinstance(before, (int, float)) and not isinstance(before, bool))
        out[key] = max(before, value) if numeric else value
    return out


class TasksMixin(SQLiteBase):

    async def get_task(self, task_id: str) -> Task | None:
        row = await self.db.read(lambda conn: conn.execute(
            f"SELECT {TASK_COLS} FROM tasks WHERE task_id = ?", (task_id,)).fetchone())
        return None if row is None else to_task(row)

    async def list_tasks(self, filter: TaskFilter, opts: ListOptions = ListOptions()) -> Page:
        where = task_where(filter)
        return await self.db.read(lambda conn: paginate(
            conn, table="tasks", columns=TASK_COLS, where=where, opts=opts,
            to_doc=lambda r: to_task(r).to_doc(), id_field="task_id", sortable=SORTABLE))

    async def task_counts_by_status(self, filter: TaskFilter = TaskFilter()) -> dict[str, int]:
        where = task_where(filter)
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT status, count(*) FROM tasks WHERE {where.sql()} GROUP BY status", where.params).fetchall())
        return {r[0]: r[1] for r in rows}

    async def task_counts_by_name_status(self, dataset_id: str) -> dict[str, dict[str, int]]:
        rows = await self.db.read(lambda conn: conn.execute(
            """SELECT name, min(task_index) AS ti, status, count(*) FROM tasks WHERE dataset_id = ?
               GROUP BY name, status""", (dataset_id,)).fetchall())
        order: dict[str, int] = {}
        for r in rows:
            order[r[0]] = min(order.get(r[0], r[1]), r[1])
        out: dict[str, dict[str, int]] = {name: {} for name in sorted(order, key=lambda n: (order[n], n))}
        for r in rows:
            out[r[0]][r[2]] = r[3]
        return out

    async def task_status_summary(self, dataset_id: str) -> dict[str, list[str]]:
        def op(conn: sqlite3.Connection) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for r in conn.execute("SELECT status, task_id FROM tasks WHERE dataset_id = ? ORDER BY seq",
                                  (dataset_id,)):
                out.setdefault(r[0], []).append(r[1])
            return out
        return await self.db.read(op)

    async def set_task_status(self, task_id: str, status: str, *, instance_id: str | None = None,
                              force: bool = False) -> bool:
        checks.settable_task_status(status)
        prev = allowed_from("task", status, force)

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(f"SELECT {MOVE_COLS} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            if row is None or row["status"] not in prev or row["status"] == status:
                return False
            if instance_id is not None and row["instance_id"] != instance_id:
                return False
            return move_tasks(conn, [row], status, nowstr()) > 0
        return await self.db.write(op)

    async def bulk_task_status(self, status: str, *, dataset_id: str | None = None,
                               task_ids: Sequence[str] | None = None,
                               job_ids: Sequence[str] | None = None, force: bool = False,
                               reset_failures: bool = False) -> int:
        checks.settable_task_status(status)
        prev = sorted(allowed_from("task", status, force))
        checks.bulk_task_selection(dataset_id, task_ids, job_ids)
        where = Where()
        if dataset_id is not None:
            where.add("dataset_id = ?", dataset_id)
        if job_ids is not None:
            clause, params = jobs_tasks(job_ids)
            where.add(clause, *params)
        where.any_of("task_id", task_ids).any_of("status", prev)

        def op(conn: sqlite3.Connection) -> int:
            rows = conn.execute(f"SELECT {MOVE_COLS} FROM tasks WHERE {where.sql()}", where.params).fetchall()
            return move_tasks(conn, rows, status, nowstr(), reset_failures=reset_failures)
        return await self.db.write(op)

    async def update_requirements(self, dataset_id: str, task_name: str, requirements: dict[str, Any],
                                  *, replace: bool = False) -> int:
        requirements = checked_requirements(requirements)  # a bad value fails before any task changes

        def op(conn: sqlite3.Connection) -> int:
            rows = conn.execute("""SELECT seq, requirements, status, class_id, priority FROM tasks
                                   WHERE dataset_id = ? AND name = ?""", (dataset_id, task_name)).fetchall()
            classes = ClassCache(conn)
            queued: Counter[int] = Counter()
            tops: dict[int, float] = {}
            updates = []
            for r in rows:
                old = json.loads(r["requirements"])
                new = _replace_requirements(old, requirements) if replace else {**old, **requirements}
                if new == old:
                    continue
                shape = task_shape(new)
                class_id = classes.class_id(shape)
                if r["status"] == "queued" and class_id != r["class_id"]:
                    queued[r["class_id"]] -= 1
                    queued[class_id] += 1
                    tops[class_id] = max(tops.get(class_id, r["priority"]), r["priority"])
                need = shape.need
                updates.append((canonical_json(new), need.cpu, need.gpu, need.memory, need.disk, need.time,
                                shape.site, dumps(list(shape.os)), shape.resource_class, class_id, r["seq"]))
            conn.executemany("""UPDATE tasks SET requirements = ?, req_cpu = ?, req_gpu = ?, req_memory = ?,
                                req_disk = ?, req_time = ?, req_site = ?, req_os = ?, resource_class = ?,
                                class_id = ? WHERE seq = ?""", updates)
            adjust_queued(conn, queued, tops)
            return len(updates)
        return await self.db.write(op)

    async def set_priorities(self, priorities: Sequence[tuple[str, float]]) -> int:
        rows = [(p, task_id) for task_id, p in checks.task_priorities(priorities)]

        def op(conn: sqlite3.Connection) -> int:
            # the offset keeps the hand-set value relative to the dataset's
            # priority, so it holds while the task waits and after a retry
            changed = conn.executemany(
                """UPDATE tasks SET priority = min(1.0, max(0.0, ?1)), prio_offset = ?1 - coalesce(
                       (SELECT task_base FROM datasets WHERE datasets.dataset_id = tasks.dataset_id), 0)
                   WHERE task_id = ?2""", rows).rowcount
            refresh_tops(conn)  # queued tasks may have moved up or down
            return changed
        return await self.db.write(op)

    async def task_stats_by_name(self, dataset_id: str) -> dict[str, dict[str, float]]:
        rows = await self.db.read(lambda conn: conn.execute(
            """SELECT name, min(task_index), count(*), sum(req_gpu), sum(walltime), sum(walltime_err),
                      min(walltime), max(walltime), sum(walltime * walltime)
               FROM tasks WHERE dataset_id = ? AND status = 'complete' GROUP BY name""",
            (dataset_id,)).fetchall())
        out: dict[str, dict[str, float]] = {}
        for name, _, n, gpu, total, err, lo, hi, squares in sorted(rows, key=lambda r: (r[1], r[0])):
            avg = total / n
            out[name] = {
                "count": n, "gpu": gpu, "total_hrs": total, "total_err_hrs": err, "avg_hrs": avg,
                "stddev_hrs": math.sqrt(max(0.0, squares / n - avg * avg)), "min_hrs": lo, "max_hrs": hi,
                "efficiency": total / (total + err) if total + err > 0 else 0.0,
            }
        return out
