"""Mongo only: the fallback (no transactions) repair pass finishes what a crash
interrupted. It plants the crash markers directly in the collections, so it
chooses its backend itself (``backend`` parametrised to "mongo"). Written by
the MongoDB backend's author.
"""
from __future__ import annotations

import time

import pytest

from common.resources import Resources
from server.store import AttemptResult, ClaimRequest, NewJob, NewTask, TaskFilter
from server.store.mongo import open_mongo_store
from server.store.mongo.reports import result_fields
from server.store.mongo.transitions import CLEAR_CLAIM, attempt_base

from .helpers import new_dataset


@pytest.mark.parametrize("backend", ["mongo"])
async def test_mongo_repair_finishes_interrupted_changes(store_url: str) -> None:
    s = await open_mongo_store(store_url, transactions=False)
    try:
        ds = await new_dataset(s, jobs=3)
        jobs = []
        for j in range(3):
            a = NewTask("a", 0, status="queued")
            jobs.append(NewJob(j, [a, NewTask("b", 1, depends=[a.task_id])]))
        await s.create_jobs(ds.dataset_id, jobs)
        free = Resources(cpu=1, memory=4, disk=4, time=4)
        # crash right after a claim's task update: no attempt document
        c1 = await s.claim(ClaimRequest("p", free, host="h1"))
        assert c1 is not None
        await s._attempts.delete_one({"_id": c1.instance_id})
        # crash right after complete's decisive write: the follow-up is still pending
        c2 = await s.claim(ClaimRequest("p", free))
        assert c2 is not None
        doc = await s._tasks.find_one({"_id": c2.task.task_id})
        pending = {"instance_id": c2.instance_id, "task_id": doc["_id"], "insert": attempt_base(doc),
                   "set": {"status": "complete", "end": "x", **result_fields(AttemptResult(time_used=60))},
                   "outputs": [], "wake": True}
        await s._tasks.update_one({"_id": doc["_id"]},
                                  {"$set": {"status": "complete", **CLEAR_CLAIM, "pending_attempt": pending}})
        # a create that died before its job document (long ago), and one that died after it
        await s._tasks.update_many({"job_id": jobs[2].job_id}, {"$set": {"creating": time.time() - 7200}})
        await s._jobs.delete_one({"_id": jobs[2].job_id})
        await s._tasks.update_many({"job_id": jobs[1].job_id}, {"$set": {"creating": time.time()}})
        await s._classes.update_many({}, {"$inc": {"queued": 5}})  # counts left too high

        done = await s.repair()

        assert done == {"pending": 1, "attempts": 1, "unhidden": 2, "deleted": 2}
        assert [a.status for a in await s.get_attempts(c1.task.task_id)] == ["processing"]
        assert [(a.status, a.time_used) for a in await s.get_attempts(c2.task.task_id)] == [("complete", 60)]
        assert await s._tasks.count_documents({"pending_attempt": {"$exists": True}}) == 0
        assert sum(c.queued for c in await s.queued_classes()) == 0
        assert await s.release_dependencies() == 1  # the completion's wake-up was applied
        counts = await s.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id))
        assert sum(counts.values()) == 4
    finally:
        await s.close()
