"""The claim (queued -> processing) and pilot leases.

A claim reads the handful of resource classes that have queued tasks, keeps
those that can fit the pilot, and probes the ``(class_id, priority desc,
seq)`` partial index once per class: its cost depends on the number of
classes, never on the number of queued tasks. All of it runs in the single
writer, inside one transaction, so two claimers can never take one task.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Sequence

from ..interface import InvalidArgumentError
from ..records import Attempt, ClaimedTask, ClaimRequest, nowstr
from ..rules import site_os_fit
from .base import SQLiteBase
from .classes import ClassRow, queued_classes
from .rows import ATTEMPT_COLS, TASK_COLS, to_attempt, to_task

EPS = 1e-9  # float noise on GB/hour comparisons (same allowance as common.resources)

_TOP = """SELECT seq, priority FROM tasks INDEXED BY ix_tasks_claim
          WHERE status = 'queued' AND class_id = ? ORDER BY priority DESC, seq LIMIT 1"""
_TOP_FILTERED = """SELECT seq, priority FROM tasks INDEXED BY ix_tasks_claim
          WHERE status = 'queued' AND class_id = ? AND req_cpu <= ? AND req_memory <= ? AND req_disk <= ?
          AND req_time <= ? ORDER BY priority DESC, seq LIMIT 1"""


def _may_fit(c: ClassRow, req: ClaimRequest) -> bool:
    free = req.free
    return (c.gpu <= free.gpu and c.min_cpu <= free.cpu and c.min_memory <= free.memory + EPS
            and c.min_disk <= free.disk + EPS and c.min_time <= free.time + EPS
            and site_os_fit(c.site, c.os, req.site, req.os))


def _fits_all(c: ClassRow, req: ClaimRequest) -> bool:
    free = req.free
    return (c.cpu <= free.cpu and c.memory <= free.memory + EPS and c.disk <= free.disk + EPS
            and c.time <= free.time + EPS)


def pick_task(conn: sqlite3.Connection, req: ClaimRequest) -> tuple[int, int] | None:
    """(seq, class_id) of the task to hand out, or None."""
    gpu_classes: list[ClassRow] = []
    cpu_classes: list[ClassRow] = []
    for c in queued_classes(conn):
        if _may_fit(c, req):
            (gpu_classes if c.gpu > 0 else cpu_classes).append(c)
    free = req.free
    # A pilot with GPUs tries GPU work first: a CPU task there wastes the GPU.
    for group in (gpu_classes, cpu_classes):
        best: tuple[float, int, int] | None = None
        for c in group:
            if _fits_all(c, req):
                row = conn.execute(_TOP, (c.class_id,)).fetchone()
            else:  # straddling class: filter inside it (bounded by the class)
                row = conn.execute(_TOP_FILTERED, (c.class_id, free.cpu, free.memory + EPS, free.disk + EPS,
                                                   free.time + EPS)).fetchone()
            if row is not None and (best is None or (row[1], -row[0]) > (best[0], -best[1])):
                best = (row[1], row[0], c.class_id)
        if best is not None:
            return best[1], best[2]
    return None


def claim_in(conn: sqlite3.Connection, req: ClaimRequest, now: float) -> ClaimedTask | None:
    """The body of :meth:`ClaimMixin.claim` (the crash test's writer calls it too)."""
    picked = pick_task(conn, req)
    if picked is None:
        return None
    seq, class_id = picked
    instance_id = uuid.uuid4().hex
    lease = now + req.lease_seconds
    stamp = nowstr()
    row = conn.execute(
        f"""UPDATE tasks SET status = 'processing', status_changed = ?, instance_id = ?, pilot_id = ?,
                lease_expires = ?, attempts = attempts + 1, site = ?
            WHERE seq = ? AND status = 'queued' RETURNING {TASK_COLS}""",
        (stamp, instance_id, req.pilot_id, lease, req.site, seq)).fetchone()
    if row is None:  # cannot happen with one writer; refuse rather than double-hand
        raise RuntimeError(f"claim lost task seq {seq} between pick and update")
    conn.execute("UPDATE resource_classes SET queued = queued - 1 WHERE class_id = ?", (class_id,))
    conn.execute(
        """INSERT INTO attempts (task_id, attempt, instance_id, dataset_id, job_id, pilot_id, host, site, start,
               status, resources, config_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'processing', ?, ?)""",
        (row["task_id"], row["attempts"], instance_id, row["dataset_id"], row["job_id"], req.pilot_id, req.host,
         req.site, stamp, row["requirements"], row["config_version"]))
    return ClaimedTask(to_task(row), instance_id, row["attempts"], lease)


class ClaimMixin(SQLiteBase):

    async def claim(self, request: ClaimRequest) -> ClaimedTask | None:
        if request.lease_seconds <= 0:
            raise InvalidArgumentError(f"lease_seconds must be positive, got {request.lease_seconds}")
        return await self.db.write(lambda conn: claim_in(conn, request, self.clock()))

    async def renew_leases(self, pilot_id: str, task_ids: Sequence[str], lease_seconds: float) -> list[str]:
        if lease_seconds <= 0:
            raise InvalidArgumentError(f"lease_seconds must be positive, got {lease_seconds}")
        ids = list(task_ids)
        if not ids:
            return []

        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                """UPDATE tasks SET lease_expires = ? WHERE status = 'processing' AND pilot_id = ?
                   AND task_id IN (SELECT value FROM json_each(?)) RETURNING task_id""",
                (self.clock() + lease_seconds, pilot_id, json.dumps(ids))).fetchall()
            held = {r[0] for r in rows}
            return [t for t in ids if t in held]
        return await self.db.write(op)

    async def get_attempts(self, task_id: str) -> list[Attempt]:
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT {ATTEMPT_COLS} FROM attempts WHERE task_id = ? ORDER BY attempt", (task_id,)).fetchall())
        return [to_attempt(r) for r in rows]
