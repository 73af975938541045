"""Dependency release (idle -> waiting) and queueing (waiting -> queued).

Release is driven by wake-ups, not by scanning idle tasks: a task carries a
``deps_check`` token (sparse index) when it may have become releasable: when
it is created or reset to idle, and when a task it depends on completes (the
completion writes a fresh token on its dependents, found through the multikey
``depends`` index). A release pass looks only at tasks holding a token, moves
those whose dependencies are all complete, and removes the token of the others
only if it is still the token it read, so a completion racing with the pass
is never lost.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pymongo import UpdateOne

from .. import checks
from ..records import new_id, nowstr
from .base import Doc
from .jobs import VISIBLE
from .schema import DATASET_QUEUE_KEY, QUEUE_KEY
from .transitions import TransitionsMixin

RELEASE_BATCH = 1_000


class SchedulingMixin(TransitionsMixin):
    async def release_dependencies(self, limit: int = 10_000, dataset_id: str | None = None) -> int:
        checks.count("limit", limit)
        released = 0
        # A suspended (or finished) dataset's tasks stay idle until it runs again.
        running = [d["_id"] for d in await self._datasets.find({"status": "processing"}, {"_id": 1}).to_list()]
        if dataset_id is not None:
            running = [d for d in running if d == dataset_id]
        while released < limit and running:
            query: Doc = {"deps_check": {"$exists": True}, "status": "idle", **VISIBLE,
                          "dataset_id": {"$in": running}}
            batch = await self._tasks.find(query, {"depends": 1, "deps_check": 1}).limit(
                min(RELEASE_BATCH, limit - released)).to_list()
            if not batch:
                break
            deps = {dep for d in batch for dep in d.get("depends") or []}
            complete: set[str] = set()
            if deps:
                done = await self._tasks.find({"_id": {"$in": list(deps)}, "status": "complete"},
                                              {"_id": 1}).to_list()
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
            if ready_ops:
                result = await self._tasks.bulk_write(ready_ops, ordered=False)
                released += result.modified_count
            if rest_ops:
                await self._tasks.bulk_write(rest_ops, ordered=False)
        return released

    async def queue_tasks(self, num: int, *, dataset_deprio: Sequence[str] = (),
                          dataset_id: str | None = None) -> list[str]:
        checks.count("num", num)
        base: Doc = {"status": "waiting", **VISIBLE}
        picks: list[Doc] = []
        projection = {"class_key": 1, "resource_class": 1, "req": 1}
        order = [("priority", -1), ("seq", 1)]
        if dataset_id is not None:
            picks = await self._tasks.find({**base, "dataset_id": dataset_id}, projection).sort(
                order).hint(DATASET_QUEUE_KEY).limit(num).to_list()
        else:
            deprio = list(dict.fromkeys(dataset_deprio))
            query = {**base, "dataset_id": {"$nin": deprio}} if deprio else base
            picks = await self._tasks.find(query, projection).sort(order).hint(QUEUE_KEY).limit(num).to_list()
            # deprioritised datasets last, the last-listed (least loaded) first
            for ds in reversed(deprio):
                if len(picks) >= num:
                    break
                picks += await self._tasks.find({**base, "dataset_id": ds}, projection).sort(order).hint(
                    DATASET_QUEUE_KEY).limit(num - len(picks)).to_list()
        if not picks:
            return []
        token = new_id()
        now = nowstr()
        await self._count_into_classes(picks)  # up first: counts never too low
        by_class: dict[str, list[str]] = {}
        for d in picks:
            by_class.setdefault(d["class_key"], []).append(d["_id"])
        moved_all = True
        for key, ids in by_class.items():
            result = await self._tasks.update_many(
                {"_id": {"$in": ids}, "status": "waiting"},
                {"$set": {"status": "queued", "status_changed": now, "queue_token": token}})
            if result.modified_count < len(ids):
                moved_all = False
                await self._count_out_of_classes(Counter({key: len(ids) - result.modified_count}))
        if moved_all:
            return [d["_id"] for d in picks]
        moved = await self._tasks.find({"_id": {"$in": [d["_id"] for d in picks]}, "queue_token": token},
                                       {"_id": 1}).to_list()
        moved_ids = {d["_id"] for d in moved}
        return [d["_id"] for d in picks if d["_id"] in moved_ids]
