"""Bulk creation of jobs with their tasks, in two phases.

1. :func:`prepare` (a worker thread, no database): validation, JSON
   encoding, resource shapes, row tuples. This is most of the CPU of a bulk
   create; doing it outside the single writer keeps the writer free for
   claims meanwhile, and lets two creates overlap on two cores.
2. :func:`insert` (the writer, one transaction): skip jobs that already
   exist, make missing resource classes, ``executemany`` the rows, correct
   ``deps_pending`` for dependencies (of other datasets) already complete,
   update the queued counts.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from .. import checks
from ..interface import ConflictError, NotFoundError
from ..records import NewJob, nowstr
from ..rules import TaskShape, canonical_json, task_priority_offset, task_shape
from .classes import ClassCache, adjust_queued
from .rows import dumps

TASK_INSERT = """INSERT INTO tasks (task_id, dataset_id, job_id, job_index, task_index, name, depends,
    requirements, status, status_changed, priority, config_version, deps_pending, req_cpu, req_gpu,
    req_memory, req_disk, req_time, req_site, req_os, resource_class, class_id, prio_offset)
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"""
JOB_INSERT = "INSERT INTO jobs (job_id, dataset_id, job_index, status, status_changed) VALUES (?,?,?,?,?)"

"""A task is created in any status but processing: processing needs a claim
and an attempt record, which only the claim makes."""


def _ids_json(ids: list[str]) -> str:
    """JSON of a list of ids; plain hex ids (the norm) skip the encoder."""
    if all(i.isalnum() for i in ids):
        return '["' + '","'.join(ids) + '"]' if ids else "[]"
    return dumps(ids)


@dataclass
class Prepared:
    dataset_id: str
    job_rows: list[tuple[Any, ...]] = field(default_factory=list)
    task_rows: list[tuple[Any, ...]] = field(default_factory=list)
    dep_rows: list[tuple[str, str]] = field(default_factory=list)
    shapes: list[TaskShape] = field(default_factory=list)
    """Distinct shapes of the batch (they create classes and lower class minimums)."""
    queued: Counter[str] = field(default_factory=Counter)
    tops: dict[str, float] = field(default_factory=dict)
    external: dict[str, list[str]] = field(default_factory=dict)
    """dependency outside this batch -> tasks of the batch waiting for it."""


def prepare(dataset_id: str, jobs: Sequence[NewJob], config_version: int | None,
            sizes: tuple[int, int] = (0, 0)) -> Prepared:
    """``sizes``: the dataset's (tasks_per_job, jobs_submitted), for each
    task's priority offset (``rules.task_priority_offset``)."""
    checks.new_jobs(jobs)
    out = Prepared(dataset_id)
    tasks_per_job, jobs_submitted = sizes
    now = nowstr()
    batch: dict[str, str] = {t.task_id: t.status for job in jobs for t in job.tasks}
    shape_of: dict[str, tuple[TaskShape, str]] = {}
    rows = out.task_rows
    for job in jobs:
        out.job_rows.append((job.job_id, dataset_id, job.job_index, job.status, now))
        for t in job.tasks:
            req_json = canonical_json(t.requirements)
            cached = shape_of.get(req_json)
            if cached is None:
                shape = task_shape(t.requirements)
                cached = shape_of[req_json] = (shape, dumps(list(shape.os)))
            shape, os_json = cached
            pending = 0
            for d in t.depends:
                status = batch.get(d)
                if status is None:
                    out.external.setdefault(d, []).append(t.task_id)
                    pending += 1
                elif status != "complete":
                    pending += 1
                out.dep_rows.append((d, t.task_id))
            priority = float(t.priority)
            if t.status == "queued":
                out.queued[shape.class_key] += 1
                if priority > out.tops.get(shape.class_key, -1e300):
                    out.tops[shape.class_key] = priority
            need = shape.need
            rows.append((t.task_id, dataset_id, job.job_id, job.job_index, t.task_index, t.name,
                         _ids_json(t.depends), req_json, t.status, now, priority, config_version, pending,
                         need.cpu, need.gpu, need.memory, need.disk, need.time, shape.site, os_json,
                         shape.resource_class, shape.class_key,
                         task_priority_offset(job.job_index, t.task_index, tasks_per_job, jobs_submitted)))
    out.shapes = list(dict.fromkeys(shape for shape, _ in shape_of.values()))
    return out


def _existing_jobs(conn: sqlite3.Connection, p: Prepared) -> set[str]:
    """job_ids of this batch already stored (by id or by dataset + index)."""
    ids = json.dumps([r[0] for r in p.job_rows])
    indexes = json.dumps([r[2] for r in p.job_rows])
    have = {r[0] for r in conn.execute(
        "SELECT job_id FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))", (ids,))}
    taken = {r[0] for r in conn.execute(
        "SELECT job_index FROM jobs WHERE dataset_id = ? AND job_index IN (SELECT value FROM json_each(?))",
        (p.dataset_id, indexes))}
    have.update(r[0] for r in p.job_rows if r[2] in taken)
    return have


def _without(p: Prepared, skip: set[str]) -> Prepared:
    """The batch minus the jobs (and their tasks) in ``skip`` (a retried create)."""
    kept = Prepared(p.dataset_id, [r for r in p.job_rows if r[0] not in skip],
                    [r for r in p.task_rows if r[2] not in skip], shapes=p.shapes, external=p.external)
    task_ids = {r[0] for r in kept.task_rows}
    kept.dep_rows = [d for d in p.dep_rows if d[1] in task_ids]
    for r in kept.task_rows:
        if r[8] == "queued":
            kept.queued[r[21]] += 1
            kept.tops[r[21]] = max(kept.tops.get(r[21], r[10]), r[10])
    kept.external = {d: [t for t in ts if t in task_ids] for d, ts in p.external.items()}
    return kept


def insert(conn: sqlite3.Connection, p: Prepared) -> int:
    if conn.execute("SELECT 1 FROM datasets WHERE dataset_id = ?", (p.dataset_id,)).fetchone() is None:
        raise NotFoundError(f"dataset {p.dataset_id} not found")
    skip = _existing_jobs(conn, p)
    if skip:
        p = _without(p, skip)
    if not p.job_rows:
        return 0
    classes = ClassCache(conn, prefetch=True)
    ids = {shape.class_key: classes.class_id(shape) for shape in p.shapes}
    try:
        conn.executemany(JOB_INSERT, p.job_rows)
        conn.executemany(TASK_INSERT, [row[:21] + (ids[row[21]],) + row[22:] for row in p.task_rows])
        conn.executemany("INSERT OR IGNORE INTO task_deps (depends_on, task_id) VALUES (?, ?)", p.dep_rows)
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"a task id of this create already exists: {exc}") from None
    if p.external:
        done = [r[0] for r in conn.execute(
            "SELECT task_id FROM tasks WHERE status = 'complete' AND task_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(p.external)),))]
        conn.executemany("UPDATE tasks SET deps_pending = deps_pending - 1 WHERE task_id = ?",
                         [(t,) for d in done for t in p.external[d]])
    adjust_queued(conn, Counter({ids[k]: n for k, n in p.queued.items()}), {ids[k]: v for k, v in p.tops.items()})
    return len(p.job_rows)
