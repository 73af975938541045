"""Dependency release (idle -> waiting) and queueing (waiting -> queued).

Release is driven by wake-ups, not by scanning idle tasks: a task carries a
``deps_check`` token (sparse index) when it may have become releasable: when
it is created or reset to idle, and when a task it depends on completes (the
completion writes a fresh token on its dependents, found through the multikey
``depends`` index). A release pass looks only at tasks holding a token, moves
those whose dependencies are all complete, and removes the token of the others
only if it is still the token it read, so a completion racing with the pass
is never lost. Release walks one processing dataset at a time on the partial
index ``(dataset_id, deps_check)``, so woken tasks of a suspended dataset are
not read again every pass.

Queueing is the SQLite backend's algorithm: a waiting task's priority is its
dataset's ``task_base`` plus the ``prio_offset`` stored at creation, so the
best waiting tasks are a k-way merge of each processing dataset's
``(dataset_id, status, prio_offset desc, seq)`` index range, read lazily
(about the tasks moved plus one batch per dataset), and a dataset priority
change is one document update plus a re-pricing of its queued tasks.

Paced retries (``not_before`` set) are left out of the waiting ranges; each
queueing call first unsets ``not_before`` of those whose time has come, a
range of the sparse ``not_before`` index.
"""
from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pymongo import UpdateOne

from .. import checks
from ..records import new_id, nowstr
from ..rules import task_priority_from
from .base import Doc
from .jobs import VISIBLE
from .schema import NOT_BEFORE_KEY, RELEASE_KEY, WAITING_KEY
from .transitions import TransitionsMixin

RELEASE_BATCH = 1_000
FETCH = 256
"""Waiting tasks fetched at a time per dataset while merging."""


async def _waiting(cursor: Any, base: float) -> AsyncIterator[tuple[Any, ...]]:
    """One dataset's waiting tasks, best first, as merge keys (-priority, -offset, seq, doc)."""
    async for d in cursor:
        offset = float(d.get("prio_offset", 0.0))
        yield (-task_priority_from(base, offset), -offset, d["seq"], d)


async def take_best(ranges: list[AsyncIterator[tuple[Any, ...]]], want: int) -> list[tuple[Any, ...]]:
    """The ``want`` best items of sorted async ranges (k-way merge, lazy)."""
    heap: list[tuple[Any, ...]] = []
    for i, r in enumerate(ranges):
        item = await anext(r, None)
        if item is not None:
            heap.append((*item[:3], i, item))
    heapq.heapify(heap)
    best = []
    while heap and len(best) < want:
        *_, i, item = heapq.heappop(heap)
        best.append(item)
        nxt = await anext(ranges[i], None)
        if nxt is not None:
            heapq.heappush(heap, (*nxt[:3], i, nxt))
    return best


class SchedulingMixin(TransitionsMixin):
    async def _processing(self, dataset_id: str | None) -> list[tuple[str, float]]:
        """(dataset_id, task_base) of the processing datasets (or of the one asked)."""
        query: Doc = {"status": "processing"}
        if dataset_id is not None:
            query["_id"] = dataset_id
        docs = await self._datasets.find(query, {"task_base": 1}).sort("dataset", 1).to_list()
        return [(d["_id"], float(d.get("task_base", 0.0))) for d in docs]

    async def release_dependencies(self, limit: int = 10_000, dataset_id: str | None = None) -> int:
        checks.count("limit", limit)
        released = 0
        # A suspended (or finished) dataset's tasks stay idle until it runs again.
        for ds, _ in await self._processing(dataset_id):
            while released < limit:
                moved = await self._release_batch(ds, min(RELEASE_BATCH, limit - released))
                if moved is None:
                    break
                released += moved
        return released

    async def _release_batch(self, dataset_id: str, limit: int) -> int | None:
        """Look at up to ``limit`` woken tasks of one dataset; None when it has none."""
        query: Doc = {"dataset_id": dataset_id, "deps_check": {"$exists": True}, "status": "idle", **VISIBLE}
        batch = await self._tasks.find(query, {"depends": 1, "deps_check": 1}).hint(RELEASE_KEY).limit(
            limit).to_list()
        if not batch:
            return None
        deps = {dep for d in batch for dep in d.get("depends") or []}
        complete: set[str] = set()
        if deps:
            done = await self._tasks.find({"_id": {"$in": list(deps)}, "status": "complete"}, {"_id": 1}).to_list()
            complete = {d["_id"] for d in done}
        now = nowstr()
        ready_ops, rest_ops = [], []
        for d in batch:
            # guarded by the token read: a completion meanwhile wrote a new one
            guard = {"_id": d["_id"], "status": "idle", "deps_check": d["deps_check"]}
            if all(dep in complete for dep in d.get("depends") or []):
                ready_ops.append(UpdateOne(guard, {"$set": {"status": "waiting", "status_changed": now},
                                                   "$unset": {"deps_check": ""}}))
            else:
                rest_ops.append(UpdateOne(guard, {"$unset": {"deps_check": ""}}))
        released = 0
        if ready_ops:
            released = (await self._tasks.bulk_write(ready_ops, ordered=False)).modified_count
        if rest_ops:
            await self._tasks.bulk_write(rest_ops, ordered=False)
        return released

    async def queue_tasks(self, num: int, *, dataset_deprio: Sequence[str] = (),
                          dataset_id: str | None = None) -> list[str]:
        checks.count("num", num)
        deprio = list(dict.fromkeys(dataset_deprio))
        await self._tasks.update_many({"not_before": {"$lte": time.time()}}, {"$unset": {"not_before": ""}},
                                      hint=NOT_BEFORE_KEY)
        datasets = await self._processing(dataset_id)
        base = dict(datasets)
        # every dataset not deprioritised first, then the deprioritised ones
        # one at a time from the end of the list (least loaded first)
        groups = [[d for d in datasets if d[0] not in deprio]]
        groups.extend([(d, base[d])] for d in reversed(deprio) if d in base)
        taken: list[str] = []
        for group in groups:
            want = num - len(taken)
            if want <= 0:
                break
            cursors = [self._tasks.find({"dataset_id": d, "status": "waiting", "not_before": None, **VISIBLE},
                                        {"class_key": 1, "resource_class": 1, "req": 1, "seq": 1, "prio_offset": 1}).sort(
                [("prio_offset", -1), ("seq", 1)]).hint(WAITING_KEY).limit(want).batch_size(FETCH)
                       for d, _ in group]
            try:
                best = await take_best([_waiting(c, b) for c, (_, b) in zip(cursors, group)], want)
            finally:
                for c in cursors:
                    await c.close()
            if best:
                taken.extend(await self._move_to_queued([(k[3], -k[0]) for k in best]))
        return taken

    async def next_not_before(self) -> float | None:
        docs = await self._tasks.find({"not_before": {"$gt": 0}}, {"not_before": 1}).hint(NOT_BEFORE_KEY).sort(
            "not_before", 1).limit(1).to_list()
        return float(docs[0]["not_before"]) if docs else None

    async def _move_to_queued(self, picks: list[tuple[Doc, float]]) -> list[str]:
        """waiting -> queued with each task's priority; the ids that moved."""
        token = new_id()
        now = nowstr()
        await self._count_into_classes(d for d, _ in picks)  # up first: counts never too low
        by_class: dict[str, list[UpdateOne]] = {}
        for d, priority in picks:
            by_class.setdefault(d["class_key"], []).append(UpdateOne(
                {"_id": d["_id"], "status": "waiting"},
                {"$set": {"status": "queued", "status_changed": now, "queue_token": token, "priority": priority}}))
        moved_all = True
        for key, ops in by_class.items():
            result = await self._tasks.bulk_write(ops, ordered=False)
            if result.modified_count < len(ops):
                moved_all = False
                await self._count_out_of_classes(Counter({key: len(ops) - result.modified_count}))
        ids = [d["_id"] for d, _ in picks]
        if moved_all:
            return ids
        moved = await self._tasks.find({"_id": {"$in": ids}, "queue_token": token}, {"_id": 1}).to_list()
        moved_ids = {d["_id"] for d in moved}
        return [i for i in ids if i in moved_ids]

    async def set_priority_bases(self, bases: Mapping[str, float]) -> int:
        changed = 0
        for dataset_id, value in bases.items():
            value = float(value)
            doc = await self._datasets.find_one({"_id": dataset_id}, {"task_base": 1})
            if doc is None or float(doc.get("task_base", 0.0)) == value:
                continue
            await self._datasets.update_one({"_id": dataset_id}, {"$set": {"task_base": value}})
            changed += 1
            # waiting tasks follow through task_base; queued ones (at most the
            # queue) carry their own value, which the claim sorts by
            queued = await self._tasks.find({"dataset_id": dataset_id, "status": "queued"},
                                            {"prio_offset": 1}).to_list()
            ops = [UpdateOne({"_id": d["_id"], "status": "queued"},
                             {"$set": {"priority": task_priority_from(value, float(d.get("prio_offset", 0.0)))}})
                   for d in queued]
            for start in range(0, len(ops), RELEASE_BATCH):
                await self._tasks.bulk_write(ops[start:start + RELEASE_BATCH], ordered=False)
        return changed
