"""The claim: hand the best queued task that fits a pilot to that pilot, once.

One claim is one atomic ``find_one_and_update`` on the task document:

    {status: "queued", class_key: {$in: CANDIDATES}, req.cpu <= free.cpu, ...}
    sorted by (priority desc, seq)  ->  status processing, new instance_id, lease

MongoDB applies it to exactly one document and no two claimers can both match
it, so a task is never handed out twice. ``CANDIDATES`` are the resource
classes (``queue_classes``, a handful of documents) whose site/os suit the pilot
and whose smallest need fits its free resources; with the compound index
``(status, class_key, priority desc, seq)`` a real MongoDB merges the per-class
index ranges in priority order, so the cost follows the number of classes, not
the number of queued tasks. A pilot with free GPUs first asks GPU classes only.

The attempt document is then created (same transaction on a replica set; else
an idempotent upsert derivable from the task's ``claim`` field, which the
repair pass also uses).
"""
from __future__ import annotations

import time
from collections import Counter

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from common.resources import Resources

from .. import checks
from ..records import ClaimedTask, ClaimRequest, new_id, nowstr
from ..rules import site_os_fit
from .base import Doc
from .docs import task_from
from .jobs import VISIBLE
from .scheduling import SchedulingMixin
from .schema import CLAIM_KEY
from .transitions import attempt_base
from .txn import Session, in_transaction

# Float noise allowance, as common.resources.Resources.fits.
_EPS = 1e-9


def _fits_class(cls: Doc, free: Resources, request: ClaimRequest) -> bool:
    return (cls.get("min_cpu", 0) <= free.cpu and cls.get("min_gpu", 0) <= free.gpu
            and cls.get("min_memory", 0) <= free.memory + _EPS and cls.get("min_disk", 0) <= free.disk + _EPS
            and cls.get("min_time", 0) <= free.time + _EPS
            and site_os_fit(cls.get("site", ""), cls.get("os", []), request.site, request.os,
                        bool(request.group)))


def _candidate_groups(classes: list[Doc], request: ClaimRequest) -> list[tuple[list[str], bool]]:
    """Class-key groups to try in order, each with "counted empty" (the second chance)."""
    free = request.free
    fitting = [c for c in classes if _fits_class(c, free, request)]
    tiers = ([[c for c in fitting if c.get("min_gpu", 0) > 0], [c for c in fitting if c.get("min_gpu", 0) <= 0]]
             if free.gpu > 0 else [fitting])
    groups: list[tuple[list[str], bool]] = []
    for tier in tiers:
        counted = [c["_id"] for c in tier if c.get("queued", 0) > 0]
        empty = [c["_id"] for c in tier if c.get("queued", 0) <= 0]
        if counted:
            groups.append((counted, False))
        if empty:  # counts are never too low, except just after a recount race
            groups.append((empty, True))
    return groups


class ClaimMixin(SchedulingMixin):
    async def claim(self, request: ClaimRequest) -> ClaimedTask | None:
        checks.claim_request(request)
        for keys, counted_empty in _candidate_groups(await self._class_docs(), request):
            claimed = await self._claim_in(keys, request)
            if claimed is None:
                continue
            task_doc, claimed_task = claimed
            key = task_doc["class_key"]
            if counted_empty:  # the count was wrong: set it from the index
                exact = await self._tasks.count_documents({"status": "queued", "class_key": key})
                await self._classes.update_one({"_id": key}, {"$set": {"queued": exact}})
            else:
                await self._count_out_of_classes(Counter({key: 1}))
            return claimed_task
        return None

    async def _claim_in(self, keys: list[str], request: ClaimRequest) -> tuple[Doc, ClaimedTask] | None:
        free = request.free
        query: Doc = {
            "status": "queued", "class_key": {"$in": keys},
            "req.cpu": {"$lte": free.cpu}, "req.gpu": {"$lte": free.gpu},
            "req.memory": {"$lte": free.memory + _EPS}, "req.disk": {"$lte": free.disk + _EPS},
            "req.time": {"$lte": free.time + _EPS}, **VISIBLE,
        }
        iid = new_id()
        lease = time.time() + request.lease_seconds
        now = nowstr()
        update = {
            "$set": {"status": "processing", "status_changed": now, "instance_id": iid,
                     "pilot_id": request.pilot_id, "lease_expires": lease, "site": request.site,
                     "claim": {"instance_id": iid, "pilot_id": request.pilot_id, "host": request.host,
                               "site": request.site, "start": now}},
            "$inc": {"attempts": 1},
        }
        sort = [("priority", -1), ("seq", 1)]

        async def take(session: Session) -> Doc | None:
            after = await self._tasks.find_one_and_update(
                query, update, sort=sort, hint=CLAIM_KEY, return_document=ReturnDocument.AFTER,
                session=session)
            if after is not None:
                await self._attempts.update_one({"_id": iid}, {"$setOnInsert": attempt_base(after)},
                                                upsert=True, session=session)
            return after

        if self.transactions:
            async def body(session: AsyncClientSession) -> Doc | None:
                return await take(session)

            after = await in_transaction(self._client, body)
        else:
            after = await take(None)
        if after is None:
            return None
        return after, ClaimedTask(task=task_from(after), instance_id=iid, attempt=int(after["attempts"]),
                                  lease_expires=lease)
