"""Task status changes that may touch a second document (the attempt).

Every change of one task goes through :meth:`TransitionsMixin._commit_task`:
an atomic update of the task document guarded by what the caller read (status,
instance_id), plus optional follow-up work (``pending``): close or create the
attempt document, record output URLs, wake dependent tasks. With transactions
both happen in one; without, the follow-up is first stored inside the task
update itself (``pending_attempt``), then applied (idempotent upserts), then
removed, so a crash at any point leaves a marker that the next change of the
task or the repair pass finishes.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from .. import checks
from ..interface import StoreError
from ..records import new_id, nowstr
from ..rules import allowed_from
from .base import Doc
from .jobs import VISIBLE
from .tasks import TasksMixin
from .txn import Session, in_transaction

#: Fields of a claim; cleared whenever a task leaves processing.
CLEAR_CLAIM: Doc = {"instance_id": "", "pilot_id": "", "lease_expires": None}

NO_PENDING: Doc = {"pending_attempt": {"$exists": False}}


def cancel_pending(doc: Doc, status: str, now: str, **fields: Any) -> Doc | None:
    """Follow-up closing the open attempt of a processing task (None if it has none)."""
    if doc.get("status") != "processing" or not doc.get("instance_id"):
        return None
    return {"instance_id": doc["instance_id"], "task_id": doc["_id"], "insert": attempt_base(doc),
            "set": {"status": status, "end": now, **fields}, "outputs": [], "wake": False}


def attempt_base(doc: Doc) -> Doc:
    """The attempt document a claim of task ``doc`` creates (from its ``claim`` fields).

    Kept derivable from the task so the fallback can (re)create a missing
    attempt idempotently after a crash.
    """
    claim = doc.get("claim") or {}
    return {
        "task_id": doc["_id"], "attempt": int(doc.get("attempts", 0)),
        "instance_id": claim.get("instance_id", doc.get("instance_id", "")),
        "dataset_id": doc["dataset_id"], "job_id": doc["job_id"],
        "pilot_id": claim.get("pilot_id", ""), "host": claim.get("host", ""),
        "site": claim.get("site", ""), "start": claim.get("start", ""), "end": None,
        "status": "processing", "failure_class": "", "kind": "", "rule": "", "reason": "",
        "resources": dict(doc.get("requirements") or {}), "resources_used": {}, "modules": [],
        "exit_codes": [], "inputs": [], "outputs": [], "frazil_version": "",
        "config_version": doc.get("config_version"), "requirement_changes": {}, "time_used": None,
    }


class TransitionsMixin(TasksMixin):
    async def _commit_task(self, query: Doc, update: Doc, pending: Doc | None) -> Doc | None:
        """Apply ``update`` to the task matching ``query`` with its follow-up.

        Returns the task as it was BEFORE the update, None when nothing matched.
        """
        if pending is None:
            return await self._tasks.find_one_and_update({**query, **NO_PENDING}, update)
        if self.transactions:
            async def body(session: AsyncClientSession) -> Doc | None:
                before = await self._tasks.find_one_and_update({**query, **NO_PENDING}, update,
                                                               session=session)
                if before is not None:
                    await self._apply_pending(pending, session)
                return before

            return await in_transaction(self._client, body)
        marked = {**update, "$set": {**update.get("$set", {}), "pending_attempt": pending}}
        before = await self._tasks.find_one_and_update({**query, **NO_PENDING}, marked)
        if before is not None:
            await self._finish_pending(pending)
        return before

    async def _apply_pending(self, pending: Doc, session: Session) -> None:
        """The follow-up writes; each is an idempotent upsert or a guarded update."""
        iid = pending["instance_id"]
        if pending.get("insert") or pending.get("set"):
            sets = pending.get("set") or {}
            insert = {k: v for k, v in (pending.get("insert") or {}).items() if k not in sets and k != "_id"}
            update: Doc = {}
            if sets:
                update["$set"] = sets
            if insert:
                update["$setOnInsert"] = insert
            await self._attempts.update_one({"_id": iid}, update, upsert=True, session=session)
        outputs = pending.get("outputs") or []
        if outputs:
            await self._outputs.bulk_write(
                [UpdateOne({"_id": f"{iid}:{o['url']}"}, {"$setOnInsert": o}, upsert=True) for o in outputs],
                ordered=False, session=session)
        if pending.get("wake"):
            # a fresh token: a release pass that read the old one must not clear it
            await self._tasks.update_many({"depends": pending["task_id"], "status": "idle"},
                                          {"$set": {"deps_check": iid}}, session=session)

    async def _finish_pending(self, pending: Doc) -> None:
        """Fallback: apply a stored follow-up, then drop the marker (idempotent)."""
        await self._apply_pending(pending, None)
        await self._tasks.update_one(
            {"_id": pending["task_id"], "pending_attempt.instance_id": pending["instance_id"]},
            {"$unset": {"pending_attempt": ""}})

    async def _read_task(self, task_id: str) -> Doc | None:
        """The task, with any unfinished follow-up of a crashed change finished first."""
        for _ in range(5):
            doc = await self._tasks.find_one({"_id": task_id, **VISIBLE})
            if doc is None or "pending_attempt" not in doc:
                return doc
            await self._finish_pending(doc["pending_attempt"])
        raise StoreError(f"task {task_id}: its unfinished follow-up keeps coming back; run the repair pass")

    # ------------------------------------------------------------ status changes

    def _status_update(self, doc: Doc, status: str, now: str, reset_failures: bool) -> tuple[Doc, Doc | None]:
        sets: Doc = {"status": status, "status_changed": now}
        pending = None
        if doc["status"] == "processing":
            sets.update(CLEAR_CLAIM)
            pending = cancel_pending(doc, "cancelled", now)
        if status == "idle":
            sets["deps_check"] = new_id()
        if reset_failures:
            sets.update(failures=0, failures_nonphysics=0, failures_infra=0, site="")
        if status == "complete" and doc["status"] != "complete" and "_id" in doc:
            # dependents may now be releasable: wake them with the change
            pending = pending or {"instance_id": new_id(), "task_id": doc["_id"], "insert": None, "set": None,
                                  "outputs": []}
            pending["wake"] = True
        # any status change made here (a user's reset, a suspend) ends a paced retry's wait
        return {"$set": sets, "$unset": {"not_before": ""}}, pending

    async def _move_task(self, doc: Doc, status: str, *, reset_failures: bool = False) -> bool:
        """One guarded move of a task read as ``doc``; False if it changed meanwhile."""
        now = nowstr()
        update, pending = self._status_update(doc, status, now, reset_failures)
        entering = status == "queued" and doc["status"] != "queued"
        if entering:
            await self._count_into_classes([doc])
        before = await self._commit_task({"_id": doc["_id"], "status": doc["status"],
                                          "instance_id": doc.get("instance_id", "")}, update, pending)
        if before is None:
            if entering:
                await self._count_out_of_classes(Counter({doc["class_key"]: 1}))
            return False
        if doc["status"] == "queued" and status != "queued":
            await self._count_out_of_classes(Counter({doc["class_key"]: 1}))
        return True

    async def set_task_status(self, task_id: str, status: str, *, instance_id: str | None = None,
                              force: bool = False) -> bool:
        checks.settable_task_status(status)
        allowed = allowed_from("task", status, force) - {status}
        while True:
            doc = await self._read_task(task_id)
            if doc is None or doc["status"] not in allowed:
                return False
            if instance_id is not None and doc.get("instance_id") != instance_id:
                return False
            if await self._move_task(doc, status):
                return True

    async def bulk_task_status(self, status: str, *, dataset_id: str | None = None,
                               task_ids: Sequence[str] | None = None,
                               job_ids: Sequence[str] | None = None, force: bool = False,
                               reset_failures: bool = False) -> int:
        checks.settable_task_status(status)
        checks.bulk_task_selection(dataset_id, task_ids, job_ids)
        base: Doc = dict(VISIBLE)
        if dataset_id is not None:
            base["dataset_id"] = dataset_id
        if task_ids is not None:
            base["_id"] = {"$in": list(task_ids)}
        if job_ids is not None:
            base["job_id"] = {"$in": list(job_ids)}
        allowed = set(allowed_from("task", status, force))
        if not reset_failures:  # a hard reset also touches tasks already there (counters, site)
            allowed.discard(status)
        now = nowstr()
        moved = 0
        # 1. one by one where a second document changes: claimed tasks close their
        #    attempt, completions wake dependents (bounded by running slots / rare)
        single = {"processing"} | ({s for s in allowed if s != "complete"} if status == "complete" else set())
        for old in sorted(allowed & single):
            for doc in await self._tasks.find({**base, "status": old}).to_list():
                fresh = await self._read_task(doc["_id"])
                if fresh is not None and fresh["status"] in allowed:
                    moved += await self._move_task(fresh, status, reset_failures=reset_failures)
        allowed -= single
        # 2. queued tasks per class, so the class counts move by exactly what moved
        sets, _ = self._status_update({"status": ""}, status, now, reset_failures)
        if "queued" in allowed and status != "queued":
            for cls in await self._class_docs():
                result = await self._tasks.update_many(
                    {**base, "status": "queued", "class_key": cls["_id"]}, sets)
                if result.modified_count:
                    await self._count_out_of_classes(Counter({cls["_id"]: result.modified_count}))
                moved += result.modified_count
            allowed.discard("queued")
        # 3. everything else in one update (into queued: per class, counted up first)
        rest = sorted(allowed - {status}) if status == "queued" else sorted(allowed)
        if status == "queued" and status in allowed:  # hard reset of queued tasks: counters only
            result = await self._tasks.update_many({**base, "status": "queued"}, sets)
            moved += result.modified_count
        if rest and status == "queued":
            moved += await self._bulk_into_queued({**base, "status": {"$in": rest}}, sets)
        elif rest:
            result = await self._tasks.update_many({**base, "status": {"$in": rest}}, sets)
            moved += result.modified_count
        return moved

    async def _bulk_into_queued(self, query: Doc, sets: Doc) -> int:
        moved = 0
        for key in await self._tasks.distinct("class_key", query):
            docs = await self._tasks.find({**query, "class_key": key},
                                          {"class_key": 1, "resource_class": 1, "req": 1}).to_list()
            if not docs:
                continue
            await self._count_into_classes(docs)
            result = await self._tasks.update_many({**query, "class_key": key, "_id": {
                "$in": [d["_id"] for d in docs]}}, sets)
            if len(docs) > result.modified_count:
                await self._count_out_of_classes(Counter({key: len(docs) - result.modified_count}))
            moved += result.modified_count
        return moved
