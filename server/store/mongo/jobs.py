"""Jobs: bulk creation with their tasks, queries, guarded status, roll-up."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError

from common import states

from .. import checks
from ..interface import ConflictError, NotFoundError
from ..query import JobFilter, ListOptions, Page, check_statuses
from ..records import Job, NewJob, StoragePressure, nowstr
from .base import Doc, only_duplicates
from .classes import ClassesMixin
from ..rules import allowed_from, canonical_json, check_status, task_priority_offset
from .docs import job_from, normalised_requirements
from .listing import page
from .txn import in_transaction

#: A create_jobs batch holds whole jobs and about this many tasks: large enough
#: that a 100,000-job dataset takes a few hundred round trips, small enough to
#: stay far below MongoDB's 16 MB transaction and 48 MB message limits.
BATCH_TASKS = 5_000

#: Tasks inserted by the transaction-less fallback carry this marker until
#: their job document exists; every task query hides them (see txn.py).
VISIBLE: Doc = {"creating": {"$exists": False}}


Shapes = dict[str, tuple[Doc, str, str]]


def shape_of(shapes: Shapes, requirements: dict[str, Any]) -> tuple[Doc, str, str]:
    """normalised_requirements, cached by canonical JSON (a dataset has a few shapes)."""
    key = canonical_json(requirements)
    found = shapes.get(key)
    if found is None:
        found = shapes[key] = normalised_requirements(requirements)
    return found


def task_doc(dataset_id: str, job: NewJob, task: Any, seq: int, now: str,
             config_version: int | None, shapes: Shapes, sizes: tuple[int, int]) -> Doc:
    """``sizes``: the dataset's (tasks_per_job, jobs_submitted), for the
    task's priority offset (``rules.task_priority_offset``)."""
    req, rclass, class_key = shape_of(shapes, task.requirements)
    status = task.status
    doc: Doc = {
        "_id": task.task_id, "task_id": task.task_id, "dataset_id": dataset_id, "job_id": job.job_id,
        "job_index": job.job_index, "task_index": task.task_index, "name": task.name,
        "depends": list(task.depends), "requirements": dict(task.requirements), "status": status,
        "status_changed": now, "priority": float(task.priority), "failures": 0,
        "failures_nonphysics": 0, "failures_infra": 0, "evictions": 0, "walltime": 0.0,
        "walltime_err": 0.0, "walltime_err_n": 0, "site": "", "instance_id": "", "pilot_id": "",
        "lease_expires": None, "resource_class": rclass, "class_key": class_key, "attempts": 0,
        "config_version": config_version, "seq": seq, "req": dict(req),
        "prio_offset": task_priority_offset(job.job_index, task.task_index, *sizes),
    }
    if status == "idle":
        doc["deps_check"] = "new"  # the release pass looks at it once (scheduling.py)
    return doc


class JobsMixin(ClassesMixin):
    async def create_jobs(self, dataset_id: str, jobs: Sequence[NewJob],
                          config_version: int | None = None) -> int:
        ds = await self._datasets.find_one({"_id": dataset_id}, {"tasks_per_job": 1, "jobs_submitted": 1})
        if ds is None:
            raise NotFoundError(f"dataset {dataset_id} not found")
        checks.new_jobs(jobs)
        sizes = (int(ds.get("tasks_per_job", 0)), int(ds.get("jobs_submitted", 0)))
        shapes: Shapes = {}
        for job in jobs:
            for task in job.tasks:
                shape_of(shapes, task.requirements)  # every requirement checked before anything is stored
        created = 0
        batch: list[NewJob] = []
        ntasks = 0
        for job in jobs:
            batch.append(job)
            ntasks += len(job.tasks)
            if ntasks >= BATCH_TASKS:
                created += await self._create_batch(dataset_id, batch, config_version, shapes, sizes)
                batch, ntasks = [], 0
        if batch:
            created += await self._create_batch(dataset_id, batch, config_version, shapes, sizes)
        return created

    async def _new_jobs_only(self, dataset_id: str, batch: list[NewJob]) -> list[NewJob]:
        """Drop jobs whose id or (dataset, job_index) exists: a retried create is a no-op."""
        existing = await self._jobs.find(
            {"$or": [{"_id": {"$in": [j.job_id for j in batch]}},
                     {"dataset_id": dataset_id, "job_index": {"$in": [j.job_index for j in batch]}}]},
            {"job_index": 1, "dataset_id": 1}).to_list()
        ids = {d["_id"] for d in existing}
        indexes = {d["job_index"] for d in existing if d["dataset_id"] == dataset_id}
        fresh: list[NewJob] = []
        for job in batch:
            if job.job_id in ids or job.job_index in indexes:
                continue
            ids.add(job.job_id)
            indexes.add(job.job_index)
            fresh.append(job)
        return fresh

    async def _check_task_ids(self, fresh: list[NewJob]) -> None:
        """ConflictError when a task id of these new jobs belongs to another task.

        Hidden tasks of the same job (a create that crashed before writing its
        job) are not a conflict: the fallback insert ignores them and unhides
        them with the job; with transactions they are removed first.
        """
        owner = {t.task_id: j.job_id for j in fresh for t in j.tasks}  # unique: checks.new_jobs
        existing = await self._tasks.find({"_id": {"$in": list(owner)}}, {"job_id": 1, "creating": 1}).to_list()
        clash = [d["_id"] for d in existing if d.get("job_id") != owner[d["_id"]] or "creating" not in d]
        if clash:
            raise ConflictError(f"task ids of this create already exist: {', '.join(sorted(clash)[:5])}")
        if existing and self.transactions:
            await self._tasks.delete_many({"_id": {"$in": [d["_id"] for d in existing]},
                                           "creating": {"$exists": True}})

    async def _create_batch(self, dataset_id: str, batch: list[NewJob], config_version: int | None,
                            shapes: Shapes, sizes: tuple[int, int]) -> int:
        for _ in range(3):
            fresh = await self._new_jobs_only(dataset_id, batch)
            if not fresh:
                return 0
            await self._check_task_ids(fresh)
            now = nowstr()
            first = await self._next_seq("seq", len(fresh) + sum(len(j.tasks) for j in fresh))
            job_docs: list[Doc] = []
            task_docs: list[Doc] = []
            seq = first
            for job in fresh:
                job_docs.append({"_id": job.job_id, "job_id": job.job_id, "dataset_id": dataset_id,
                                 "job_index": job.job_index, "status": job.status,
                                 "status_changed": now, "seq": seq})
                seq += 1
                for task in job.tasks:
                    task_docs.append(task_doc(dataset_id, job, task, seq, now, config_version, shapes, sizes))
                    seq += 1
            # counted up before the tasks exist as queued (classes.py)
            await self._count_into_classes(d for d in task_docs if d["status"] == "queued")
            try:
                if self.transactions:
                    return await self._insert_in_transaction(job_docs, task_docs)
                return await self._insert_ordered(job_docs, task_docs)
            except BulkWriteError as exc:
                # Another caller created some of these jobs meanwhile: filter
                # again and retry with what is still missing.
                if not only_duplicates(exc):
                    raise
        raise ConflictError("jobs of this create keep colliding with concurrent creates of the same ids")

    async def _insert_in_transaction(self, job_docs: list[Doc], task_docs: list[Doc]) -> int:
        async def body(session: AsyncClientSession) -> int:
            await self._jobs.insert_many(job_docs, session=session)
            if task_docs:
                await self._tasks.insert_many(task_docs, session=session)
            return len(job_docs)

        return await in_transaction(self._client, body)

    async def _insert_ordered(self, job_docs: list[Doc], task_docs: list[Doc]) -> int:
        """Fallback: hidden tasks first, then the jobs (the commit point), then unhide.

        A crash before the job insert leaves only hidden tasks (removed by the
        repair pass); after it, ``repair`` or a retried call unhides them.
        """
        if task_docs:
            try:
                # "creating" holds the time, so repair removes only long-abandoned ones
                created_at = time.time()
                await self._tasks.insert_many([{**d, "creating": created_at} for d in task_docs],
                                              ordered=False)
            except BulkWriteError as exc:
                if not only_duplicates(exc):
                    raise
        try:
            result = await self._jobs.insert_many(job_docs, ordered=False)
            inserted = len(result.inserted_ids)
        except BulkWriteError as exc:
            if not only_duplicates(exc):
                raise
            inserted = int(exc.details.get("nInserted", 0))
        # unhide the tasks of the jobs that exist now (ours, or the same job
        # written by a concurrent identical create); tasks of a job that lost
        # its job_index to another job stay hidden until the repair removes them
        ids = [d["_id"] for d in job_docs]
        if inserted < len(job_docs):
            ids = [d["_id"] for d in await self._jobs.find({"_id": {"$in": ids}}, {"_id": 1}).to_list()]
        await self._tasks.update_many({"job_id": {"$in": ids}, "creating": {"$exists": True}},
                                      {"$unset": {"creating": ""}})
        return inserted

    # ------------------------------------------------------------ queries

    async def get_job(self, job_id: str) -> Job | None:
        doc = await self._jobs.find_one({"_id": job_id})
        return job_from(doc) if doc else None

    async def list_jobs(self, filter: JobFilter, opts: ListOptions = ListOptions()) -> Page:
        check_statuses(filter.status, set(states.JOB_STATUSES), "job")
        query: Doc = {}
        if filter.dataset_id is not None:
            query["dataset_id"] = filter.dataset_id
        if filter.status is not None:
            query["status"] = {"$in": list(filter.status)}
        if filter.job_index is not None:
            query["job_index"] = filter.job_index
        if filter.job_ids is not None:
            query["_id"] = {"$in": list(filter.job_ids)}
        return await page(self._jobs, query, opts, sort=[("seq", 1)],
                          to_doc=lambda d: job_from(d).to_doc(), id_field="job_id")

    async def max_job_index(self, dataset_id: str) -> int:
        doc = await self._jobs.find_one({"dataset_id": dataset_id}, {"job_index": 1},
                                        sort=[("job_index", -1)])
        return int(doc["job_index"]) if doc else -1

    async def storage_pressure(self) -> StoragePressure:
        return StoragePressure()  # the database server's disks are not ours to see

    async def job_counts_by_status(self, dataset_id: str) -> dict[str, int]:
        cursor = await self._jobs.aggregate([
            {"$match": {"dataset_id": dataset_id}},
            {"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        return {d["_id"]: d["n"] for d in await cursor.to_list() if d["n"]}

    async def job_status_summary(self, dataset_id: str) -> dict[str, list[str]]:
        docs = await self._jobs.find({"dataset_id": dataset_id}, {"status": 1}).sort("seq", 1).to_list()
        summary: dict[str, list[str]] = {}
        for d in docs:
            summary.setdefault(d["status"], []).append(d["_id"])
        return summary

    async def set_job_status(self, job_id: str, status: str, *, force: bool = False) -> bool:
        check_status("job", status)
        allowed = sorted(allowed_from("job", status, force) - {status})
        result = await self._jobs.update_one({"_id": job_id, "status": {"$in": allowed}},
                                             {"$set": {"status": status, "status_changed": nowstr()}})
        return result.modified_count > 0

    async def bulk_job_status(self, dataset_id: str, status: str, job_ids: Sequence[str] | None = None,
                              *, force: bool = False) -> int:
        check_status("job", status)
        allowed = sorted(allowed_from("job", status, force) - {status})
        query: Doc = {"dataset_id": dataset_id, "status": {"$in": allowed}}
        if job_ids is not None:
            query["_id"] = {"$in": list(job_ids)}
        result = await self._jobs.update_many(query, {"$set": {"status": status, "status_changed": nowstr()}})
        return result.modified_count

    # ------------------------------------------------------------ roll-up

    async def rollup_jobs(self, job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        ids = list(dict.fromkeys(job_ids))
        counts: dict[str, Counter[str]] = {j: Counter() for j in ids}
        tasks = await self._tasks.find({"job_id": {"$in": ids}, **VISIBLE}, {"job_id": 1, "status": 1}).to_list()
        for t in tasks:
            counts[t["job_id"]][t["status"]] += 1
        jobs = await self._jobs.find({"_id": {"$in": ids}}, {"status": 1}).to_list()
        changed: dict[str, str] = {}
        now = nowstr()
        for job in jobs:
            derived = states.job_status_from_tasks(counts[job["_id"]])
            target = states.rollup_target("job", job["status"], derived)
            if target is None:
                continue
            # guarded by the status we derived from: a concurrent change wins
            result = await self._jobs.update_one({"_id": job["_id"], "status": job["status"]},
                                                 {"$set": {"status": target, "status_changed": now}})
            if result.modified_count:
                changed[job["_id"]] = target
        return changed

    async def _all_materialized(self, doc: Doc) -> bool:
        """Every submitted job exists (or truncated); counted only once the
        highest job index says it may be true."""
        if doc.get("truncated"):
            return True
        top = await self.max_job_index(doc["_id"])
        if top + 1 < int(doc["jobs_submitted"]):
            return False
        return await self._jobs.count_documents({"dataset_id": doc["_id"]}) >= int(doc["jobs_submitted"])

    async def rollup_dataset(self, dataset_id: str) -> str | None:
        doc = await self._datasets.find_one({"_id": dataset_id})
        if doc is None or doc.get("always_active"):
            return None
        if doc["status"] == "processing" and await self._jobs.find_one(
                {"dataset_id": dataset_id, "status": "processing"}, {"_id": 1}):
            return None  # one processing job keeps the dataset processing: no count of every job
        # which job statuses are present, not how many: one probe of the
        # (dataset_id, status) index per status instead of counting every job
        present: dict[str, int] = {}
        for status in states.JOB_STATUSES:
            if await self._jobs.find_one({"dataset_id": dataset_id, "status": status}, {"_id": 1}):
                present[status] = 1
        settled = bool(present) and "processing" not in present  # else the answer needs no count
        derived = states.dataset_status_from_jobs(
            present, all_materialized=settled and await self._all_materialized(doc))
        target = states.rollup_target("dataset", doc["status"], derived)
        if target is None:
            return None
        result = await self._datasets.update_one({"_id": dataset_id, "status": doc["status"]},
                                                 {"$set": {"status": target, "status_changed": nowstr()}})
        return target if result.modified_count else None
