"""Fenced reports (complete / reset / fail) and lease expiry.

Fencing: a report applies only while the task is processing under the
``instance_id`` the claim handed out. Anything else is ``stale`` and changes
nothing, so a pilot that lost its lease (and whose task now runs elsewhere)
cannot overwrite the newer attempt. A report repeated for an attempt that
already ended the same way (HTTP clients retry POSTs) is answered
``applied`` again without changing anything.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict

from ..records import AttemptResult, FailureClass, Outcome, ReportOutcome, RetryPolicy, nowstr
from ..rules import plan_failure, task_shape
from .base import SQLiteBase
from .classes import ClassCache
from .rows import dumps
from .transitions import release_dependents

_COMPLETE_COLS = "seq, task_id, status, instance_id, attempts, dataset_id, job_id, site"
_FAILURE_COLS = _COMPLETE_COLS + ", requirements, failures_nonphysics, failures_infra"


def _fence(conn: sqlite3.Connection, task_id: str, instance_id: str, kind: str,
           columns: str = _FAILURE_COLS) -> sqlite3.Row | ReportOutcome:
    """The task row when the report may apply, else the outcome to answer."""
    row = conn.execute(f"SELECT {columns} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
    if row is None:
        return ReportOutcome(Outcome.NOT_FOUND)
    if row["status"] == "processing" and row["instance_id"] == instance_id and instance_id:
        return row
    done = conn.execute("SELECT status FROM attempts WHERE task_id = ? AND instance_id = ?",
                        (task_id, instance_id)).fetchone()
    if done is not None and done[0] == kind:
        return ReportOutcome(Outcome.APPLIED, row["status"], repeated=True)
    return ReportOutcome(Outcome.STALE)


def _close_attempt(conn: sqlite3.Connection, row: sqlite3.Row, status: str, result: AttemptResult,
                   fclass: str, changes: dict[str, dict[str, object]]) -> None:
    """Close the current attempt of the task ``row`` (found by (task_id, attempt):
    attempts keep one index, the claim path writes fewer pages)."""
    conn.execute(
        """UPDATE attempts SET "end" = ?, status = ?, failure_class = ?, kind = ?, rule = ?, reason = ?,
               resources_used = ?, modules = ?, exit_codes = ?, inputs = ?, outputs = ?, frazil_version = ?,
               requirement_changes = ?, time_used = ?, host = CASE WHEN ? != '' THEN ? ELSE host END,
               site = CASE WHEN ? != '' THEN ? ELSE site END
           WHERE task_id = ? AND attempt = ?""",
        (nowstr(), status, fclass, result.kind, result.rule, result.reason, dumps(result.resources),
         dumps(result.modules), dumps(result.exit_codes), dumps(result.inputs),
         dumps([asdict(o) for o in result.outputs]), result.frazil_version, dumps(changes), result.time_used,
         result.host, result.host, result.site, result.site, row["task_id"], row["attempts"]))


def complete_in(conn: sqlite3.Connection, task_id: str, instance_id: str, result: AttemptResult) -> ReportOutcome:
    now = nowstr()
    # The fence is the WHERE clause: the usual report costs one statement;
    # only a report that does not apply looks further (stale, replay, missing).
    row = conn.execute(
        f"""UPDATE tasks SET status = 'complete', status_changed = ?, walltime = ?, instance_id = '', pilot_id = '',
                lease_expires = NULL, site = CASE WHEN ? != '' THEN ? ELSE site END
            WHERE task_id = ? AND status = 'processing' AND instance_id = ? AND instance_id != ''
            RETURNING {_COMPLETE_COLS}""",
        (now, (result.time_used or 0.0) / 3600.0, result.site, result.site, task_id, instance_id)).fetchone()
    if row is None:
        fenced = _fence(conn, task_id, instance_id, "complete", _COMPLETE_COLS)
        return fenced if isinstance(fenced, ReportOutcome) else ReportOutcome(Outcome.STALE)
    release_dependents(conn, [(-1, task_id)])
    _close_attempt(conn, row, "complete", result, "", {})
    if result.outputs:
        conn.executemany(
            """INSERT INTO outputs (url, size, sha512, task_id, attempt, instance_id, dataset_id, job_id, created)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(o.url, o.size, o.sha512, task_id, row["attempts"], instance_id, row["dataset_id"], row["job_id"],
              now) for o in result.outputs])
    return ReportOutcome(Outcome.APPLIED, "complete")


def apply_failure(conn: sqlite3.Connection, row: sqlite3.Row, result: AttemptResult, policy: RetryPolicy,
                  physics: bool, attempt_status: str) -> ReportOutcome:
    """Counters, escalation, next status and the closed attempt of one failure."""
    plan = plan_failure(json.loads(row["requirements"]), row["failures_nonphysics"], row["failures_infra"],
                        result, policy, physics)
    sets = ["status = ?", "status_changed = ?", "failures = failures + 1", "failures_nonphysics = ?",
            "failures_infra = ?", "walltime_err = walltime_err + ?", "walltime_err_n = walltime_err_n + 1",
            "instance_id = ''", "pilot_id = ''", "lease_expires = NULL", "site = ?", "not_before = ?"]
    params: list[object] = [plan.status, nowstr(), plan.failures_nonphysics, plan.failures_infra,
                            plan.err_hours, result.site or row["site"], plan.not_before]
    if result.kind == "eviction":
        sets.append("evictions = evictions + 1")
    if plan.changes:
        shape = task_shape(plan.requirements)
        need = shape.need
        sets += ["requirements = ?", "req_cpu = ?", "req_gpu = ?", "req_memory = ?", "req_disk = ?",
                 "req_time = ?", "resource_class = ?", "class_id = ?"]
        params += [dumps(plan.requirements), need.cpu, need.gpu, need.memory, need.disk, need.time,
                   shape.resource_class, ClassCache(conn).class_id(shape)]
    conn.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE seq = ?", (*params, row["seq"]))
    _close_attempt(conn, row, attempt_status, result, plan.failure_class.value, plan.changes)
    return ReportOutcome(Outcome.APPLIED, plan.status, plan.changes)


def fail_in(conn: sqlite3.Connection, task_id: str, instance_id: str, result: AttemptResult,
            policy: RetryPolicy, physics: bool) -> ReportOutcome:
    kind = "failed" if physics else "reset"
    row = _fence(conn, task_id, instance_id, kind)
    if isinstance(row, ReportOutcome):
        return row
    return apply_failure(conn, row, result, policy, physics, kind)


class ReportsMixin(SQLiteBase):

    async def complete(self, task_id: str, instance_id: str, result: AttemptResult) -> ReportOutcome:
        return await self.db.write(lambda conn: complete_in(conn, task_id, instance_id, result))

    async def reset(self, task_id: str, instance_id: str, result: AttemptResult,
                    policy: RetryPolicy | None = None) -> ReportOutcome:
        physics = result.failure_class is FailureClass.PHYSICS
        pol = policy or RetryPolicy()
        return await self.db.write(lambda conn: fail_in(conn, task_id, instance_id, result, pol, physics))

    async def fail(self, task_id: str, instance_id: str, result: AttemptResult,
                   policy: RetryPolicy | None = None) -> ReportOutcome:
        pol = policy or RetryPolicy()
        return await self.db.write(lambda conn: fail_in(conn, task_id, instance_id, result, pol, True))

    async def expire_leases(self, now: float | None = None, policy: RetryPolicy | None = None,
                            limit: int = 10_000) -> list[str]:
        pol = policy or RetryPolicy()
        when = self.clock() if now is None else now

        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(f"""SELECT {_FAILURE_COLS} FROM tasks INDEXED BY ix_tasks_lease
                                    WHERE status = 'processing' AND lease_expires < ? LIMIT ?""",
                                (when, limit)).fetchall()
            lost = AttemptResult(failure_class=FailureClass.INFRA, kind="pilot-lost",
                                 reason="the pilot stopped renewing its lease")
            for row in rows:
                apply_failure(conn, row, lost, pol, False, "lost")
            return [r["task_id"] for r in rows]
        return await self.db.write(op)
