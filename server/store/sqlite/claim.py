"""The claim (queued -> processing) and pilot leases.

A claim reads the resource classes that have queued tasks and may fit the
pilot, best ``top`` (priority bound) first, and probes the ``(class_id,
priority desc, seq)`` partial index of each until no remaining class can
beat the best task found (usually one or two probes): its cost depends on the
classes, never on the number of queued tasks. All of it runs in the single
writer, inside one transaction, so two claimers can never take one task.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Sequence

from .. import checks
from ..records import Attempt, ClaimedTask, ClaimRequest, nowstr
from .base import SQLiteBase
from .rows import ATTEMPT_COLS, TASK_COLS, to_attempt, to_task

EPS = 1e-9  # float noise on GB/hour comparisons (same allowance as common.resources)

_TOP = """SELECT seq, priority FROM tasks INDEXED BY ix_tasks_claim
          WHERE status = 'queued' AND class_id = ? ORDER BY priority DESC, seq LIMIT 1"""
_TOP_FILTERED = """SELECT seq, priority FROM tasks INDEXED BY ix_tasks_claim
          WHERE status = 'queued' AND class_id = ? AND req_cpu <= ? AND req_memory <= ? AND req_disk <= ?
          AND req_time <= ? ORDER BY priority DESC, seq LIMIT 1"""


def _class_query(req: ClaimRequest, gpu_classes: bool) -> tuple[str, list[object]]:
    """Classes with queued tasks that may fit, best ``top`` first, read from
    one covering index (skipping a class that does not fit costs no table read)."""
    free = req.free
    os_terms = "".join(" OR instr(os_key, ?) > 0" for _ in req.os)
    any_os = "0" if req.group else "os_key = ''"  # a group pilot takes only its group's tasks
    sql = f"""SELECT class_id, cpu, memory, disk, time, top FROM resource_classes INDEXED BY ix_classes_claim
              WHERE queued > 0 AND {'gpu BETWEEN 1 AND ?' if gpu_classes else 'gpu = 0 AND 0 <= ?'}
              AND min_cpu <= ? AND min_memory <= ? AND min_disk <= ? AND min_time <= ?
              AND (site = '' OR site = ?) AND ({any_os}{os_terms}) ORDER BY top DESC"""
    params: list[object] = [free.gpu, free.cpu, free.memory + EPS, free.disk + EPS, free.time + EPS, req.site]
    params.extend(f",{o}," for o in req.os)
    return sql, params


def _best_in(conn: sqlite3.Connection, req: ClaimRequest, gpu_classes: bool,
             tighten: list[tuple[float, int]]) -> tuple[float, int, int] | None:
    """(priority, seq, class_id) of the best fitting task among GPU or CPU classes.

    Classes come best ``top`` first; probing stops once no remaining class
    can hold a better task. A probe of a class the pilot fits entirely
    returns the class's real best, which tightens its ``top`` (appended to
    ``tighten``) for the next claims.
    """
    free = req.free
    best: tuple[float, int, int] | None = None
    sql, params = _class_query(req, gpu_classes)
    classes = conn.execute(sql, params)
    for class_id, cpu, memory, disk, hours, top in classes:
        if best is not None and top < best[0]:
            break
        if cpu <= free.cpu and memory <= free.memory + EPS and disk <= free.disk + EPS and hours <= free.time + EPS:
            row = conn.execute(_TOP, (class_id,)).fetchone()
            if row is not None and row[1] < top:
                tighten.append((row[1], class_id))
        else:  # the pilot fits only part of this class: filter inside it (bounded by the class)
            row = conn.execute(_TOP_FILTERED, (class_id, free.cpu, free.memory + EPS, free.disk + EPS,
                                               free.time + EPS)).fetchone()
        if row is not None and (best is None or (row[1], -row[0]) > (best[0], -best[1])):
            best = (row[1], row[0], class_id)
    classes.close()
    return best


def pick_task(conn: sqlite3.Connection, req: ClaimRequest) -> tuple[int, int] | None:
    """(seq, class_id) of the task to hand out, or None. A pilot with GPUs
    looks at GPU classes first: a CPU task there would waste the GPU."""
    tighten: list[tuple[float, int]] = []
    best = _best_in(conn, req, True, tighten) if req.free.gpu > 0 else None
    if best is None:
        best = _best_in(conn, req, False, tighten)
    if tighten:
        conn.executemany("UPDATE resource_classes SET top = ? WHERE class_id = ?", tighten)
    return None if best is None else (best[1], best[2])


def claim_in(conn: sqlite3.Connection, req: ClaimRequest, now: float) -> ClaimedTask | None:
    """The body of :meth:`ClaimMixin.claim` (the crash test's writer calls it too)."""
    picked = pick_task(conn, req)
    if picked is None:
        return None
    seq, class_id = picked
    # uuid1 is time-ordered: consecutive claims append to the same index pages.
    # It is a fencing token, not a secret (pilots are authenticated by the API).
    instance_id = uuid.uuid1().hex
    lease = now + req.lease_seconds
    stamp = nowstr()
    row = conn.execute(
        f"""UPDATE tasks SET status = 'processing', status_changed = ?, instance_id = ?, pilot_id = ?,
                lease_expires = ?, attempts = attempts + 1, site = ?
            WHERE seq = ? AND status = 'queued' RETURNING {TASK_COLS}""",
        (stamp, instance_id, req.pilot_id, lease, req.site, seq)).fetchone()
    if row is None:  # cannot happen with one writer; refuse rather than double-hand
        raise RuntimeError(f"claim lost task seq {seq} between pick and update")
    # The class's next best is known now at the cost of one probe; keeping
    # ``top`` exact here saves the next claim a stale probe and an update.
    nxt = conn.execute(_TOP, (class_id,)).fetchone()
    conn.execute("UPDATE resource_classes SET queued = queued - 1, top = ? WHERE class_id = ?",
                 (0.0 if nxt is None else nxt[1], class_id))
    conn.execute(
        """INSERT INTO attempts (task_id, attempt, instance_id, dataset_id, job_id, pilot_id, host, site, start,
               status, resources, config_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'processing', ?, ?)""",
        (row["task_id"], row["attempts"], instance_id, row["dataset_id"], row["job_id"], req.pilot_id, req.host,
         req.site, stamp, row["requirements"], row["config_version"]))
    return ClaimedTask(to_task(row), instance_id, row["attempts"], lease)


class ClaimMixin(SQLiteBase):

    async def claim(self, request: ClaimRequest) -> ClaimedTask | None:
        checks.claim_request(request)
        return await self.db.write(lambda conn: claim_in(conn, request, self.clock()))

    async def renew_leases(self, pilot_id: str, task_ids: Sequence[str], lease_seconds: float) -> list[str]:
        checks.lease_seconds(lease_seconds)
        ids = list(task_ids)
        if not ids:
            return []

        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(  # through the task_id index; the pilot is checked on the row
                """UPDATE tasks SET lease_expires = ? WHERE task_id IN (SELECT value FROM json_each(?))
                   AND status = 'processing' AND pilot_id = ? RETURNING task_id""",
                (self.clock() + lease_seconds, json.dumps(ids), pilot_id)).fetchall()
            held = {r[0] for r in rows}
            return [t for t in ids if t in held]
        return await self.db.write(op)

    async def get_attempts(self, task_id: str) -> list[Attempt]:
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT {ATTEMPT_COLS} FROM attempts WHERE task_id = ? ORDER BY attempt", (task_id,)).fetchall())
        return [to_attempt(r) for r in rows]
