"""Jobs: bulk creation of jobs with their tasks, queries, guarded status."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Any, Sequence

from ..interface import ConflictError, InvalidArgumentError, NotFoundError
from ..query import JobFilter, ListOptions, Page, check_statuses
from ..records import Job, NewJob, nowstr
from ..rules import TaskShape, allowed_from, canonical_json, check_status, task_shape
from common import states
from .base import SQLiteBase
from .classes import ClassCache, adjust_queued
from .listing import Where, paginate
from .rows import JOB_COLS, dumps, to_job

TASK_INSERT = """INSERT INTO tasks (task_id, dataset_id, job_id, job_index, task_index, name, depends,
    requirements, status, status_changed, priority, config_version, deps_pending, req_cpu, req_gpu,
    req_memory, req_disk, req_time, req_site, req_os, resource_class, class_id)
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"""

CREATE_STATUSES = frozenset(states.TASK_STATUSES) - {"processing"}
"""A task is created in any status but processing: processing needs a claim
and an attempt record, which only :meth:`claim` makes."""


def _existing(conn: sqlite3.Connection, sql: str, values: list[Any]) -> set[Any]:
    if not values:
        return set()
    return {r[0] for r in conn.execute(sql, (json.dumps(values),))}


def insert_jobs(conn: sqlite3.Connection, dataset_id: str, jobs: Sequence[NewJob],
                config_version: int | None) -> int:
    """The body of create_jobs (also used by the crash-consistency test's writer)."""
    if conn.execute("SELECT 1 FROM datasets WHERE dataset_id = ?", (dataset_id,)).fetchone() is None:
        raise NotFoundError(f"dataset {dataset_id} not found")
    seen_index: set[int] = set()
    for job in jobs:
        if job.job_index in seen_index:
            raise InvalidArgumentError(f"job_index {job.job_index} appears twice in one create")
        seen_index.add(job.job_index)
        check_status("job", job.status)
    have_ids = _existing(conn, "SELECT job_id FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))",
                         [j.job_id for j in jobs])
    have_index = {r[0] for r in conn.execute(
        "SELECT job_index FROM jobs WHERE dataset_id = ? AND job_index IN (SELECT value FROM json_each(?))",
        (dataset_id, json.dumps(sorted(seen_index))))}
    todo = [j for j in jobs if j.job_id not in have_ids and j.job_index not in have_index]
    if not todo:
        return 0
    now = nowstr()
    conn.executemany("INSERT INTO jobs (job_id, dataset_id, job_index, status, status_changed) VALUES (?,?,?,?,?)",
                     [(j.job_id, dataset_id, j.job_index, j.status, now) for j in todo])

    batch_status: dict[str, str] = {}
    for job in todo:
        for task in job.tasks:
            if task.status not in CREATE_STATUSES:
                raise InvalidArgumentError(
                    f"task {task.name!r} of job {job.job_index}: cannot be created as {task.status!r}")
            batch_status[task.task_id] = task.status
    external = sorted({d for job in todo for t in job.tasks for d in t.depends if d not in batch_status})
    complete = _existing(conn, """SELECT task_id FROM tasks WHERE status = 'complete'
                                  AND task_id IN (SELECT value FROM json_each(?))""", external)
    complete.update(t for t, s in batch_status.items() if s == "complete")

    classes = ClassCache(conn)
    shapes: dict[str, tuple[TaskShape, int, str]] = {}
    queued: Counter[int] = Counter()
    rows: list[tuple[Any, ...]] = []
    deps: list[tuple[str, str]] = []
    for job in todo:
        for t in job.tasks:
            req_json = canonical_json(t.requirements)
            cached = shapes.get(req_json)
            if cached is None:
                shape = task_shape(t.requirements)
                cached = shapes[req_json] = (shape, classes.class_id(shape), dumps(list(shape.os)))
            shape, class_id, os_json = cached
            need = shape.need
            pending = sum(1 for d in t.depends if d not in complete)
            if t.status == "queued":
                queued[class_id] += 1
            rows.append((t.task_id, dataset_id, job.job_id, job.job_index, t.task_index, t.name,
                         dumps(t.depends), req_json, t.status, now, float(t.priority), config_version, pending,
                         need.cpu, need.gpu, need.memory, need.disk, need.time, shape.site, os_json,
                         shape.resource_class, class_id))
            deps.extend((d, t.task_id) for d in t.depends)
    try:
        conn.executemany(TASK_INSERT, rows)
        conn.executemany("INSERT OR IGNORE INTO task_deps (depends_on, task_id) VALUES (?, ?)", deps)
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"a task id of this create already exists: {exc}") from None
    adjust_queued(conn, queued)
    return len(todo)


def _job_where(f: JobFilter) -> Where:
    check_statuses(f.status, set(states.JOB_STATUSES), "job")
    where = Where()
    if f.dataset_id is not None:
        where.add("dataset_id = ?", f.dataset_id)
    if f.job_index is not None:
        where.add("job_index = ?", f.job_index)
    return where.any_of("status", f.status).any_of("job_id", f.job_ids)


class JobsMixin(SQLiteBase):

    async def create_jobs(self, dataset_id: str, jobs: Sequence[NewJob],
                          config_version: int | None = None) -> int:
        jobs = list(jobs)
        return await self.db.write(lambda conn: insert_jobs(conn, dataset_id, jobs, config_version))

    async def get_job(self, job_id: str) -> Job | None:
        row = await self.db.read(lambda conn: conn.execute(
            f"SELECT {JOB_COLS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone())
        return None if row is None else to_job(row)

    async def list_jobs(self, filter: JobFilter, opts: ListOptions = ListOptions()) -> Page:
        where = _job_where(filter)
        return await self.db.read(lambda conn: paginate(
            conn, table="jobs", columns=JOB_COLS, where=where, opts=opts,
            to_doc=lambda r: to_job(r).to_doc(), id_field="job_id"))

    async def max_job_index(self, dataset_id: str) -> int:
        return await self.db.read(lambda conn: conn.execute(
            "SELECT coalesce(max(job_index), -1) FROM jobs WHERE dataset_id = ?", (dataset_id,)).fetchone()[0])

    async def job_counts_by_status(self, dataset_id: str) -> dict[str, int]:
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT status, count(*) FROM jobs WHERE dataset_id = ? GROUP BY status", (dataset_id,)).fetchall())
        return {r[0]: r[1] for r in rows}

    async def job_status_summary(self, dataset_id: str) -> dict[str, list[str]]:
        def op(conn: sqlite3.Connection) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for r in conn.execute("SELECT status, job_id FROM jobs WHERE dataset_id = ? ORDER BY seq",
                                  (dataset_id,)):
                out.setdefault(r[0], []).append(r[1])
            return out
        return await self.db.read(op)

    async def set_job_status(self, job_id: str, status: str, *, force: bool = False) -> bool:
        prev = sorted(allowed_from("job", status, force))
        return await self.db.write(lambda conn: conn.execute(
            f"""UPDATE jobs SET status = ?, status_changed = ? WHERE job_id = ? AND status != ?
                AND status IN ({','.join('?' * len(prev))})""",
            (status, nowstr(), job_id, status, *prev)).rowcount > 0)

    async def bulk_job_status(self, dataset_id: str, status: str, job_ids: Sequence[str] | None = None,
                              *, force: bool = False) -> int:
        prev = sorted(allowed_from("job", status, force))
        where = Where().add("dataset_id = ?", dataset_id).add("status != ?", status).any_of("status", prev)
        where.any_of("job_id", job_ids)
        return await self.db.write(lambda conn: conn.execute(
            f"UPDATE jobs SET status = ?, status_changed = ? WHERE {where.sql()}",
            (status, nowstr(), *where.params)).rowcount)
