"""Task queries, counts, requirement and priority updates, per-name statistics."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne

from common import states

from .. import checks
from ..query import TASK_SORT_FIELDS, InvalidQuery, ListOptions, Page, TaskFilter, check_statuses
from ..records import Task
from ..rules import checked_requirements, task_priority_from
from .base import Doc
from .docs import normalised_requirements, task_from
from .jobs import VISIBLE, JobsMixin
from .listing import page

#: Tasks per bulk_write when updating many tasks one by one.
BULK = 1_000
#: Statuses whose priority is computed from the dataset's base (see _own_priorities).
NOT_QUEUED = ("idle", "waiting")


def task_query(f: TaskFilter) -> Doc:
    check_statuses(f.status, set(states.TASK_STATUSES), "task")
    query: Doc = dict(VISIBLE)
    if f.dataset_id is not None:
        query["dataset_id"] = f.dataset_id
    if f.status is not None:
        query["status"] = {"$in": list(f.status)}
    if f.name is not None:
        query["name"] = {"$in": list(f.name)}
    if f.job_id is not None:
        query["job_id"] = f.job_id
    if f.job_index is not None:
        query["job_index"] = f.job_index
    if f.task_ids is not None:
        query["_id"] = {"$in": list(f.task_ids)}
    if f.site is not None:
        query["site"] = {"$regex": "^" + re.escape(f.site)}
    if f.gpu is not None:
        query["req.gpu"] = {"$gt": 0} if f.gpu else {"$lte": 0}
    return query


def new_requirements(old: dict[str, Any], given: dict[str, Any], replace: bool) -> dict[str, Any]:
    """PATCH: set the given keys. Replace (IceProd's POST bulk_requirements):
    numbers only grow, every other given key is set, absent keys go."""
    if not replace:
        return {**old, **given}
    out: dict[str, Any] = {}
    for key, value in given.items():
        before = old.get(key)
        numeric = (isinstance(value, (int, float)) and not isinstance(value, bool)
                   and isinstance(before, (int, float)) and not isinstance(before, bool))
        out[key] = max(before, value) if numeric else value
    return out


class TasksMixin(JobsMixin):
    async def get_task(self, task_id: str) -> Task | None:
        doc = await self._tasks.find_one({"_id": task_id, **VISIBLE})
        if doc is None:
            return None
        await self._own_priorities([doc])
        return task_from(doc)

    async def _own_priorities(self, docs: list[Doc]) -> None:
        """A task not yet queued has no priority of its own: it is its
        dataset's ``task_base`` + its ``prio_offset`` (clamped), so a dataset
        priority change shows at once without rewriting the tasks."""
        pending = [d for d in docs if d.get("status") in NOT_QUEUED and "prio_offset" in d]
        if not pending:
            return
        ids = list({d["dataset_id"] for d in pending})
        bases = {d["_id"]: float(d.get("task_base", 0.0))
                 for d in await self._datasets.find({"_id": {"$in": ids}}, {"task_base": 1}).to_list()}
        for d in pending:
            d["priority"] = task_priority_from(bases.get(d["dataset_id"], 0.0), float(d["prio_offset"]))

    async def list_tasks(self, filter: TaskFilter, opts: ListOptions = ListOptions()) -> Page:
        for name, _ in opts.sort:
            if name not in TASK_SORT_FIELDS:
                raise InvalidQuery(f"cannot sort tasks by {name!r}; sortable: {sorted(TASK_SORT_FIELDS)}")
        sort = [*opts.sort, ("seq", 1)]
        return await page(self._tasks, task_query(filter), opts, sort=sort,
                          to_doc=lambda d: task_from(d).to_doc(), id_field="task_id", adjust=self._own_priorities)

    async def task_counts_by_status(self, filter: TaskFilter = TaskFilter()) -> dict[str, int]:
        cursor = await self._tasks.aggregate([
            {"$match": task_query(filter)}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        return {d["_id"]: d["n"] for d in await cursor.to_list() if d["n"]}

    async def task_counts_by_name_status(self, dataset_id: str) -> dict[str, dict[str, int]]:
        # One small grouping per task name (a job has a handful), each an index
        # range of (dataset_id, name): no compound-key $group over the dataset.
        names = await self._tasks.distinct("name", {"dataset_id": dataset_id, **VISIBLE})
        rows: list[tuple[int, str, dict[str, int]]] = []
        for name in names:
            cursor = await self._tasks.aggregate([
                {"$match": {"dataset_id": dataset_id, "name": name, **VISIBLE}},
                {"$group": {"_id": "$status", "n": {"$sum": 1}, "ti": {"$min": "$task_index"}}}])
            groups = await cursor.to_list()
            if groups:
                order = min(g["ti"] for g in groups)
                rows.append((order, name, {g["_id"]: g["n"] for g in groups}))
        rows.sort(key=lambda r: (r[0], r[1]))
        return {name: counts for _, name, counts in rows}

    async def task_status_summary(self, dataset_id: str) -> dict[str, list[str]]:
        docs = await self._tasks.find({"dataset_id": dataset_id, **VISIBLE}, {"status": 1}).sort(
            "seq", 1).to_list()
        summary: dict[str, list[str]] = {}
        for d in docs:
            summary.setdefault(d["status"], []).append(d["_id"])
        return summary

    async def update_requirements(self, dataset_id: str, task_name: str, requirements: dict[str, Any],
                                  *, replace: bool = False) -> int:
        requirements = checked_requirements(requirements)  # a bad value fails before any task changes
        changed = 0
        after_seq = -1
        while True:
            docs = await self._tasks.find(
                {"dataset_id": dataset_id, "name": task_name, "seq": {"$gt": after_seq}, **VISIBLE},
                {"requirements": 1, "class_key": 1, "status": 1, "seq": 1},
            ).sort("seq", 1).limit(BULK).to_list()
            if not docs:
                return changed
            after_seq = docs[-1]["seq"]
            ops = []
            for doc in docs:
                new = new_requirements(doc.get("requirements") or {}, requirements, replace)
                if new == doc.get("requirements"):
                    continue
                req, rclass, key = normalised_requirements(new)
                update = {"$set": {"requirements": new, "req": req, "resource_class": rclass, "class_key": key}}
                if doc["status"] == "queued" and key != doc["class_key"]:
                    changed += await self._move_queued_class(doc, update, {**update["$set"]})
                    continue
                ops.append(UpdateOne({"_id": doc["_id"], "status": doc["status"],
                                      "class_key": doc["class_key"]}, update))
            if ops:
                result = await self._tasks.bulk_write(ops, ordered=False)
                changed += result.modified_count

    async def _move_queued_class(self, doc: Doc, update: Doc, new: Doc) -> int:
        """A queued task changing class: count the new class up first, the old down after."""
        await self._count_into_classes([new])
        result = await self._tasks.update_one(
            {"_id": doc["_id"], "status": "queued", "class_key": doc["class_key"]}, update)
        if result.modified_count:
            await self._count_out_of_classes(Counter({doc["class_key"]: 1}))
        else:  # it left queued meanwhile: take back the early count
            await self._count_out_of_classes(Counter({new["class_key"]: 1}))
        return result.modified_count

    async def set_priorities(self, priorities: Sequence[tuple[str, float]]) -> int:
        found = 0
        items = checks.task_priorities(priorities)  # all checked before any is written
        for start in range(0, len(items), BULK):
            ops = []
            for task_id, priority in items[start:start + BULK]:
                ops.append((task_id, priority))
            if ops:
                ops = await self._priority_ops(ops)
                result = await self._tasks.bulk_write(ops, ordered=False)
                found += result.matched_count
        return found

    async def _priority_ops(self, items: list[tuple[str, float]]) -> list[UpdateOne]:
        """A hand-set priority (clamped to [0, 1]) also sets the offset
        (``priority - base``), so a task not yet queued keeps it relative to
        its dataset's priority."""
        docs = await self._tasks.find({"_id": {"$in": [t for t, _ in items]}}, {"dataset_id": 1}).to_list()
        owner = {d["_id"]: d["dataset_id"] for d in docs}
        bases = {d["_id"]: float(d.get("task_base", 0.0)) for d in await self._datasets.find(
            {"_id": {"$in": list(set(owner.values()))}}, {"task_base": 1}).to_list()}
        return [UpdateOne({"_id": t}, {"$set": {"priority": task_priority_from(0.0, p),
                                                "prio_offset": p - bases.get(owner.get(t, ""), 0.0)}})
                for t, p in items]

    async def task_stats_by_name(self, dataset_id: str) -> dict[str, dict[str, float]]:
        cursor = await self._tasks.aggregate([
            {"$match": {"dataset_id": dataset_id, "status": "complete", **VISIBLE}},
            {"$group": {"_id": "$name", "count": {"$sum": 1}, "gpu": {"$sum": "$req.gpu"},
                        "total_hrs": {"$sum": "$walltime"}, "total_err_hrs": {"$sum": "$walltime_err"},
                        "avg_hrs": {"$avg": "$walltime"}, "stddev_hrs": {"$stdDevPop": "$walltime"},
                        "min_hrs": {"$min": "$walltime"}, "max_hrs": {"$max": "$walltime"},
                        "ti": {"$min": "$task_index"}}}])
        out: dict[str, dict[str, float]] = {}
        for g in sorted(await cursor.to_list(), key=lambda g: (g["ti"], g["_id"])):
            total, err = float(g["total_hrs"] or 0.0), float(g["total_err_hrs"] or 0.0)
            out[g["_id"]] = {
                "count": g["count"], "gpu": g["gpu"] or 0, "total_hrs": total, "total_err_hrs": err,
                "avg_hrs": float(g["avg_hrs"] or 0.0), "stddev_hrs": float(g["stddev_hrs"] or 0.0),
                "min_hrs": float(g["min_hrs"] or 0.0), "max_hrs": float(g["max_hrs"] or 0.0),
                "efficiency": total / (total + err) if total + err > 0 else 0.0,
            }
        return out
