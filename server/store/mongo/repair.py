"""The repair pass run at start: finish what a crash interrupted (fallback mode).

Without transactions a crash can stop a two-document change half way. Every
such change leaves a marker that this pass completes idempotently:

* ``pending_attempt`` on a task: the attempt update / outputs / dependency
  wake-up of a status change were not (all) applied -> apply them, drop it;
* a processing task whose attempt document is missing (crash right after the
  claim) -> create it from the task's ``claim`` fields;
* tasks still ``creating`` (hidden): their job document exists -> unhide them;
  no job after ``ABANDONED_AFTER`` seconds -> the create died: delete them;
* queued counts per class -> recounted from the tasks.

Only one server replica runs it at a time (a loop lease).
"""
from __future__ import annotations

import time

from pymongo import UpdateOne

from .base import Doc
from .reports import ReportsMixin
from .transitions import attempt_base

#: Hidden tasks of a create older than this are abandoned (no create batch
#: takes minutes; a live create of another replica must not be disturbed).
ABANDONED_AFTER = 3600.0
LEASE = "frazil-mongo-repair"


class RepairMixin(ReportsMixin):
    async def repair(self) -> dict[str, int]:
        """Complete interrupted changes; returns what was done, by kind."""
        holder = f"repair-{id(self)}-{time.time()}"
        if not await self._lease(holder):
            return {}
        try:
            done = {"pending": 0, "attempts": 0, "unhidden": 0, "deleted": 0}
            for doc in await self._tasks.find({"pending_attempt": {"$exists": True}},
                                              {"pending_attempt": 1}).to_list():
                await self._finish_pending(doc["pending_attempt"])
                done["pending"] += 1
            processing = await self._tasks.find({"status": "processing"}).to_list()
            if processing:
                ops = [UpdateOne({"_id": d["instance_id"]}, {"$setOnInsert": attempt_base(d)}, upsert=True)
                       for d in processing if d.get("instance_id")]
                if ops:
                    result = await self._attempts.bulk_write(ops, ordered=False)
                    done["attempts"] = result.upserted_count
            done.update(await self._repair_creating())
            await self.recount_classes()
            return done
        finally:
            await self._leases.delete_one({"_id": LEASE, "holder": holder})

    async def _lease(self, holder: str) -> bool:
        from pymongo.errors import DuplicateKeyError

        now = time.time()
        try:
            await self._leases.update_one({"_id": LEASE, "expires": {"$lt": now}},
                                          {"$set": {"holder": holder, "expires": now + 600}}, upsert=True)
        except DuplicateKeyError:
            return False
        doc = await self._leases.find_one({"_id": LEASE})
        return doc is not None and doc.get("holder") == holder

    async def _repair_creating(self) -> dict[str, int]:
        hidden = await self._tasks.find({"creating": {"$exists": True}}, {"job_id": 1, "creating": 1}).to_list()
        if not hidden:
            return {}
        job_ids = list({d["job_id"] for d in hidden})
        existing = {d["_id"] for d in await self._jobs.find({"_id": {"$in": job_ids}}, {"_id": 1}).to_list()}
        done = {"unhidden": 0, "deleted": 0}
        if existing:
            result = await self._tasks.update_many(
                {"job_id": {"$in": list(existing)}, "creating": {"$exists": True}}, {"$unset": {"creating": ""}})
            done["unhidden"] = result.modified_count
        old = time.time() - ABANDONED_AFTER
        orphans: list[Doc] = [d for d in hidden if d["job_id"] not in existing and d["creating"] < old]
        if orphans:
            result = await self._tasks.delete_many({"_id": {"$in": [d["_id"] for d in orphans]},
                                                    "creating": {"$lt": old}})
            done["deleted"] = result.deleted_count
        return done
