"""Jobs: bulk creation (see bulk.py), queries, guarded status."""
from __future__ import annotations

import asyncio
import sqlite3
from typing import Sequence

from ..query import JobFilter, ListOptions, Page, check_statuses
from ..records import Job, NewJob, StoragePressure, nowstr
from ..rules import allowed_from
from common import states
from .base import SQLiteBase
from .bulk import insert, prepare
from .checkpoint import storage_pressure
from .listing import Where, paginate
from .rows import JOB_COLS, to_job


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
        row = await self.db.read(lambda conn: conn.execute(
            "SELECT tasks_per_job, jobs_submitted FROM datasets WHERE dataset_id = ?", (dataset_id,)).fetchone())
        sizes = (0, 0) if row is None else (row[0], row[1])  # no dataset: insert() says so
        prepared = await asyncio.to_thread(prepare, dataset_id, list(jobs), config_version, sizes)
        return await self.db.write(lambda conn: insert(conn, prepared))

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

    async def storage_pressure(self) -> StoragePressure:
        return await asyncio.to_thread(storage_pressure, self.db.path)

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
