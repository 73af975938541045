"""Job and dataset status from their children's status counts (index-only
counts: a job's few tasks through ``(dataset_id, job_index)``, ``(dataset_id, status)`` on jobs)."""
from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Sequence

from common import states

from ..records import nowstr
from .base import SQLiteBase


def rollup_jobs_in(conn: sqlite3.Connection, job_ids: Sequence[str]) -> dict[str, str]:
    changed: dict[str, str] = {}
    for job_id in dict.fromkeys(job_ids):
        row = conn.execute("SELECT status, dataset_id, job_index FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            continue
        # a job's few tasks, counted here: GROUP BY would sort them in a temp B-tree
        counts = Counter(r[0] for r in conn.execute(
            "SELECT status FROM tasks INDEXED BY ix_tasks_job WHERE dataset_id = ? AND job_index = ?",
            (row[1], row[2])))
        target = states.rollup_target("job", row[0], states.job_status_from_tasks(counts))
        if target is not None:
            conn.execute("UPDATE jobs SET status = ?, status_changed = ? WHERE job_id = ? AND status = ?",
                         (target, nowstr(), job_id, row[0]))
            changed[job_id] = target
    return changed


def _all_materialized(conn: sqlite3.Connection, ds: sqlite3.Row, dataset_id: str) -> bool:
    """Every submitted job exists (or the dataset was truncated). Counting is
    left for the end: below the highest job index it cannot be true."""
    if ds["truncated"]:
        return True
    top = conn.execute("SELECT max(job_index) FROM jobs WHERE dataset_id = ?", (dataset_id,)).fetchone()[0]
    if top is None or top + 1 < ds["jobs_submitted"]:
        return False
    return conn.execute("SELECT count(*) FROM jobs WHERE dataset_id = ?", (dataset_id,)).fetchone()[0] \
        >= ds["jobs_submitted"]


def rollup_dataset_in(conn: sqlite3.Connection, dataset_id: str) -> str | None:
    ds = conn.execute("SELECT status, jobs_submitted, truncated, always_active FROM datasets WHERE dataset_id = ?",
                      (dataset_id,)).fetchone()
    if ds is None or ds["always_active"]:
        return None
    if ds["status"] == "processing" and conn.execute(
            "SELECT 1 FROM jobs WHERE dataset_id = ? AND status = 'processing' LIMIT 1", (dataset_id,)).fetchone():
        # one processing job keeps the dataset processing: one index probe
        # instead of counting every job of a million-job dataset
        return None
    # The roll-up needs which job statuses are present, not how many: one
    # probe of (dataset_id, status) per status instead of counting every job
    # of the dataset in the writer.
    present = {s: 1 for s in states.JOB_STATUSES if conn.execute(
        "SELECT 1 FROM jobs INDEXED BY ix_jobs_dataset_status WHERE dataset_id = ? AND status = ? LIMIT 1",
        (dataset_id, s)).fetchone()}
    settled = bool(present) and "processing" not in present  # else the answer needs no count
    derived = states.dataset_status_from_jobs(
        present, all_materialized=settled and _all_materialized(conn, ds, dataset_id))
    target = states.rollup_target("dataset", ds["status"], derived)
    if target is None:
        return None
    conn.execute("UPDATE datasets SET status = ?, status_changed = ? WHERE dataset_id = ? AND status = ?",
                 (target, nowstr(), dataset_id, ds["status"]))
    return target


class RollupMixin(SQLiteBase):

    async def rollup_jobs(self, job_ids: Sequence[str]) -> dict[str, str]:
        ids = list(job_ids)
        return await self.db.write(lambda conn: rollup_jobs_in(conn, ids))

    async def rollup_job_and_dataset(self, job_id: str, dataset_id: str) -> dict[str, str]:
        def op(conn: sqlite3.Connection) -> dict[str, str]:
            changes = rollup_jobs_in(conn, [job_id])
            if changes:
                rollup_dataset_in(conn, dataset_id)
            return changes
        return await self.db.write(op)  # one hand-off to the writer instead of two

    async def rollup_dataset(self, dataset_id: str) -> str | None:
        return await self.db.write(lambda conn: rollup_dataset_in(conn, dataset_id))
