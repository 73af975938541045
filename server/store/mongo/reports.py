"""Fenced reports (complete / reset / fail), lease renewal and expiry, attempts.

A report names the ``instance_id`` its claim handed out. The task update is
guarded by that id (and by the status and id just read), so a report of an
old claim (the task was reset, expired or re-claimed meanwhile) matches
nothing and is answered ``stale`` with nothing changed. Counters and escalated
requirements are computed by ``rules.plan_failure``, shared with SQLite.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .. import checks
from ..records import (
    Attempt, AttemptResult, FailureClass, Outcome, ReportOutcome, RetryPolicy, nowstr,
)
from ..rules import plan_failure
from .base import Doc
from .claim import ClaimMixin
from .docs import attempt_from, normalised_requirements
from .transitions import CLEAR_CLAIM, attempt_base

#: Statuses a claimed task can be reported from: only a claim makes a task
#: processing, and only a claim hands out instance ids.
REPORTABLE = ("processing",)


def result_fields(result: AttemptResult) -> Doc:
    """What a report writes into the attempt document."""
    return {
        "host": result.host, "failure_class": result.failure_class.value if result.failure_class else "",
        "kind": result.kind, "rule": result.rule, "reason": result.reason,
        "resources_used": dict(result.resources), "modules": list(result.modules),
        "exit_codes": list(result.exit_codes), "inputs": list(result.inputs),
        "outputs": [{"url": o.url, "size": o.size, "sha512": o.sha512} for o in result.outputs],
        "frazil_version": result.frazil_version, "time_used": result.time_used,
        **({"site": result.site} if result.site else {}),
    }


class ReportsMixin(ClaimMixin):
    async def _report(self, task_id: str, instance_id: str, kind: str, plan: Any) -> ReportOutcome:
        """Read, check the fence, commit ``plan(doc)``; retried when the task moved meanwhile.

        A report repeated for an attempt that already ended the same way (an
        HTTP client retrying its POST) is answered ``applied`` again, changing
        nothing; any other mismatch is ``stale``.
        """
        while True:
            doc = await self._read_task(task_id)
            if doc is None:
                return ReportOutcome(Outcome.NOT_FOUND)
            if not instance_id or doc.get("instance_id") != instance_id or doc["status"] not in REPORTABLE:
                ended = await self._attempts.find_one({"_id": instance_id or "", "task_id": task_id},
                                                      {"status": 1})
                if ended is not None and ended.get("status") == kind:
                    return ReportOutcome(Outcome.APPLIED, status=doc["status"], repeated=True)
                return ReportOutcome(Outcome.STALE)
            update, pending, outcome = plan(doc)
            before = await self._commit_task(
                {"_id": task_id, "status": doc["status"], "instance_id": instance_id}, update, pending)
            if before is None:
                continue
            if doc["status"] == "queued":
                await self._count_out_of_classes(Counter({doc["class_key"]: 1}))
            return outcome

    async def complete(self, task_id: str, instance_id: str, result: AttemptResult) -> ReportOutcome:
        def plan(doc: Doc) -> tuple[Doc, Doc, ReportOutcome]:
            now = nowstr()
            hours = (result.time_used or 0.0) / 3600.0
            sets: Doc = {"status": "complete", "status_changed": now, "walltime": hours, **CLEAR_CLAIM}
            if result.site:
                sets["site"] = result.site
            base = attempt_base(doc)
            outputs = [{"url": o.url, "size": o.size, "sha512": o.sha512, "dataset_id": doc["dataset_id"],
                        "job_id": doc["job_id"], "job_index": doc.get("job_index"), "task_id": doc["_id"],
                        "task_name": doc["name"], "attempt": base["attempt"], "instance_id": instance_id,
                        "config_version": doc.get("config_version"), "created": now}
                       for o in result.outputs]
            pending = {"instance_id": instance_id, "task_id": doc["_id"], "insert": base,
                       "set": {"status": "complete", "end": now, **result_fields(result)},
                       "outputs": outputs, "wake": True}
            return {"$set": sets}, pending, ReportOutcome(Outcome.APPLIED, status="complete")

        return await self._report(task_id, instance_id, "complete", plan)

    async def reset(self, task_id: str, instance_id: str, result: AttemptResult,
                    policy: RetryPolicy | None = None) -> ReportOutcome:
        return await self._failure(task_id, instance_id, result, policy, physics=False)

    async def fail(self, task_id: str, instance_id: str, result: AttemptResult,
                   policy: RetryPolicy | None = None) -> ReportOutcome:
        return await self._failure(task_id, instance_id, result, policy, physics=True)

    def _failure_plan(self, doc: Doc, result: AttemptResult, policy: RetryPolicy, physics: bool,
                      attempt_status: str | None = None) -> tuple[Doc, Doc, ReportOutcome]:
        now = nowstr()
        fp = plan_failure(doc.get("requirements") or {}, int(doc.get("failures_nonphysics", 0)),
                          int(doc.get("failures_infra", 0)), result, policy, physics)
        sets: Doc = {"status": fp.status, "status_changed": now, "failures_nonphysics": fp.failures_nonphysics,
                     "failures_infra": fp.failures_infra, **CLEAR_CLAIM}
        if fp.changes:
            req, rclass, key = normalised_requirements(fp.requirements)
            sets.update(requirements=fp.requirements, req=req, resource_class=rclass, class_key=key)
        if result.site:
            sets["site"] = result.site
        incs: Doc = {"failures": 1, "walltime_err": fp.err_hours, "walltime_err_n": 1}
        if result.kind == "eviction":
            incs["evictions"] = 1
        update: Doc = {"$set": sets, "$inc": incs}
        if fp.not_before is not None:
            sets["not_before"] = fp.not_before
        else:  # unset, never null: the sparse not_before index holds only tasks held back
            update["$unset"] = {"not_before": ""}
        if attempt_status is None:
            attempt_status = "failed" if physics else "reset"
        fields = result_fields(result)
        fields["failure_class"] = fp.failure_class.value
        pending = {"instance_id": doc["instance_id"], "task_id": doc["_id"], "insert": attempt_base(doc),
                   "set": {"status": attempt_status, "end": now, **fields, "requirement_changes": fp.changes},
                   "outputs": [], "wake": False}
        return update, pending, ReportOutcome(Outcome.APPLIED, status=fp.status,
                                              requirement_changes=fp.changes)

    async def _failure(self, task_id: str, instance_id: str, result: AttemptResult,
                       policy: RetryPolicy | None, physics: bool) -> ReportOutcome:
        pol = policy or RetryPolicy()
        physics = physics or result.failure_class is FailureClass.PHYSICS
        return await self._report(task_id, instance_id, "failed" if physics else "reset",
                                  lambda doc: self._failure_plan(doc, result, pol, physics))

    async def renew_leases(self, pilot_id: str, task_ids: Sequence[str], lease_seconds: float) -> list[str]:
        checks.lease_seconds(lease_seconds)
        if not task_ids:
            return []
        ids = list(dict.fromkeys(task_ids))
        held = {"_id": {"$in": ids}, "pilot_id": pilot_id, "status": "processing"}
        await self._tasks.update_many(held, {"$set": {"lease_expires": time.time() + lease_seconds}})
        docs = await self._tasks.find(held, {"_id": 1}).to_list()
        found = {d["_id"] for d in docs}
        return [t for t in ids if t in found]

    async def expire_leases(self, now: float | None = None, policy: RetryPolicy | None = None,
                            limit: int = 10_000) -> list[str]:
        moment = time.time() if now is None else now
        pol = policy or RetryPolicy()
        lost = AttemptResult(failure_class=FailureClass.INFRA, kind="pilot-lost",
                             reason="lease expired: the pilot stopped renewing it")
        docs = await self._tasks.find({"status": "processing", "lease_expires": {"$lt": moment}},
                                      {"_id": 1, "instance_id": 1}).limit(limit).to_list()
        expired: list[str] = []
        for d in docs:
            doc = await self._read_task(d["_id"])
            if doc is None or doc["status"] != "processing" or doc.get("lease_expires") is None \
                    or doc["lease_expires"] >= moment:
                continue
            update, pending, _ = self._failure_plan(doc, lost, pol, physics=False, attempt_status="lost")
            before = await self._commit_task(
                {"_id": doc["_id"], "status": "processing", "instance_id": doc["instance_id"],
                 "lease_expires": {"$lt": moment}}, update, pending)
            if before is not None:
                expired.append(doc["_id"])
        return expired

    async def get_attempts(self, task_id: str) -> list[Attempt]:
        docs = await self._attempts.find({"task_id": task_id}).sort("attempt", 1).to_list()
        return [attempt_from(d) for d in docs]
