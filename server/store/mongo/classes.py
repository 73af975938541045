"""Per-resource-class counts of queued tasks (claim candidates, pilot demand).

``queue_classes`` holds one small document per resource class: how many tasks
are queued in it, its ceiling (``common.resources.class_ceiling``), its site and
os, and the smallest needs ever queued in it (to skip classes that cannot fit).
A claim reads this collection (a handful of documents) to name the classes that
can fit the pilot, then takes the best task of those classes by index.

The counts are maintained with ``$inc`` next to the task updates, never in the
same transaction (every claim would conflict on the class document). They
are kept on the safe side: a class is counted up BEFORE tasks enter
``queued`` and counted down only AFTER tasks are known to have left it, by
exactly the number that left. So a count may be too high for a moment (or
after a crash: the repair pass recounts), never too low; and the claim does
not trust a zero either: when the counted classes yield nothing it looks once
more in the fitting classes counted empty (see ``claim.py``).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import UpdateOne

from common.resources import Resources, class_ceiling

from ..records import QueueClass
from .base import Doc, MongoBase

_NUMERIC = ("cpu", "gpu", "memory", "disk", "time")


def _smallest(doc: Doc, high: Doc) -> Resources | None:
    try:
        return Resources(cpu=int(doc["min_cpu"]), gpu=int(high["gpu"]), memory=float(doc["min_memory"]),
                         disk=float(doc["min_disk"]), time=float(doc["min_time"]))
    except (KeyError, TypeError, ValueError):  # a class document from before min_* were kept
        return None


class ClassesMixin(MongoBase):
    async def _count_into_classes(self, task_docs: Iterable[Doc]) -> None:
        """Count tasks about to become queued (call BEFORE the status change)."""
        per_class: dict[str, list[Doc]] = {}
        for doc in task_docs:
            per_class.setdefault(doc["class_key"], []).append(doc)
        ops = []
        for key, docs in per_class.items():
            first = docs[0]
            ceiling = class_ceiling(first["resource_class"]).as_dict()
            # flat names (min_cpu, ...): plain fields upsert the same way everywhere
            low = {f"min_{k}": min(d["req"][k] for d in docs) for k in _NUMERIC}
            ops.append(UpdateOne(
                {"_id": key},
                {"$inc": {"queued": len(docs)}, "$min": low,
                 "$setOnInsert": {"resource_class": first["resource_class"], "ceiling": ceiling,
                                  "site": first["req"]["site"], "os": first["req"]["os"]}},
                upsert=True))
        if ops:
            await self._classes.bulk_write(ops, ordered=False)

    async def _count_out_of_classes(self, left: Counter[str]) -> None:
        """Count tasks that have left ``queued`` (call AFTER the status change)."""
        ops = [UpdateOne({"_id": key}, {"$inc": {"queued": -n}}) for key, n in left.items() if n]
        if ops:
            await self._classes.bulk_write(ops, ordered=False)

    async def _class_docs(self) -> list[Doc]:
        return await self._classes.find({}).to_list()

    async def queued_classes(self) -> list[QueueClass]:
        out: list[QueueClass] = []
        for doc in sorted(await self._class_docs(), key=lambda d: d["_id"]):
            if doc.get("queued", 0) <= 0:
                continue
            high = doc["ceiling"]
            out.append(QueueClass(resource_class=doc["resource_class"], cpu=high["cpu"], gpu=high["gpu"],
                                  memory=high["memory"], disk=high["disk"], time=high["time"],
                                  site=doc.get("site", ""), os=list(doc.get("os", [])),
                                  queued=int(doc["queued"]), class_key=doc["_id"],
                                  smallest=_smallest(doc, high)))
        return out

    async def queued_by_dataset(self, class_keys: Sequence[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for key in class_keys:  # one class at a time: each reads the (status, class_key, ...) index
            cursor = await self._tasks.aggregate([
                {"$match": {"status": "queued", "class_key": key}},
                {"$group": {"_id": "$dataset_id", "n": {"$sum": 1}}}])
            counts = {doc["_id"]: int(doc["n"]) for doc in await cursor.to_list()}
            if counts:
                out[key] = counts
        return out

    async def class_batchsys(self, class_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key in class_keys:
            doc = await self._tasks.find_one({"status": "queued", "class_key": key}, {"requirements": 1})
            if doc is not None:
                out[key] = dict((doc.get("requirements") or {}).get("batchsys") or {})
        return out

    async def recount_classes(self) -> None:
        """Set every class count to the exact number of queued tasks (repair pass).

        A claim running meanwhile in another process can leave a count one
        too low for a moment; the claim never trusts a zero (see claim.py).
        """
        cursor = await self._tasks.aggregate([
            {"$match": {"status": "queued"}},
            {"$group": {"_id": "$class_key", "n": {"$sum": 1}}}])
        exact = {d["_id"]: d["n"] for d in await cursor.to_list()}
        ops = [UpdateOne({"_id": doc["_id"]}, {"$set": {"queued": exact.get(doc["_id"], 0)}})
               for doc in await self._class_docs()]
        if ops:
            await self._classes.bulk_write(ops, ordered=False)
