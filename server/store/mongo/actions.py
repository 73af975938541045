"""Action messages of ``/actions/*`` (IceProd's services queue) in MongoDB.

A worker takes a message with one ``find_one_and_update`` (queued, or
processing with a lock older than ``stale_after`` because its worker died),
so two workers never take the same one; finishing is fenced by ``worker_id``.
"""
from __future__ import annotations

import time
from typing import Any

from pymongo import ReturnDocument

from .. import checks
from ..records import ACTION_STATUSES, ActionMessage, new_id, nowstr
from .base import Doc, MongoBase
from .docs import from_doc

ACTIVE = ["queued", "processing"]


def _message(doc: Doc) -> ActionMessage:
    return from_doc(ActionMessage, doc)


def _payload_sets(update: dict[str, Any] | None) -> Doc:
    return {f"payload.{k}": v for k, v in checks.action_payload_update(update).items()}


class ActionsMixin(MongoBase):
    async def add_action(self, action: str, payload: dict[str, Any], *, priority: int = 10,
                         dataset_id: str | None = None, dedupe_key: str | None = None) -> ActionMessage:
        checks.action_payload(payload)
        if dedupe_key is not None:
            existing = await self._actions.find_one(
                {"action": action, "dedupe_key": dedupe_key, "status": {"$in": ACTIVE}}, sort=[("seq", 1)])
            if existing is not None:
                return _message(existing)
        now = nowstr()
        message = ActionMessage(message_id=new_id(), action=action, payload=dict(payload), priority=priority,
                                created_at=now, updated_at=now, dataset_id=dataset_id, dedupe_key=dedupe_key)
        seq = await self._next_seq("action")
        await self._actions.insert_one({"_id": message.message_id, **message.to_doc(), "seq": seq})
        return message

    async def get_action(self, message_id: str) -> ActionMessage | None:
        doc = await self._actions.find_one({"_id": message_id})
        return _message(doc) if doc else None

    async def action_counts(self, action: str) -> dict[str, int]:
        cursor = await self._actions.aggregate([
            {"$match": {"action": action}}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        found = {d["_id"]: d["n"] for d in await cursor.to_list()}
        return {status: int(found.get(status, 0)) for status in ACTION_STATUSES}

    async def latest_action(self, action: str, dataset_id: str) -> ActionMessage | None:
        doc = await self._actions.find_one({"action": action, "dataset_id": dataset_id}, sort=[("seq", -1)])
        return _message(doc) if doc else None

    async def pop_action(self, worker_id: str, *, stale_after: float = 910.0) -> ActionMessage | None:
        now = time.time()
        doc = await self._actions.find_one_and_update(
            {"$or": [{"status": "queued"},
                     {"status": "processing", "locked_at": {"$lt": now - stale_after}}]},
            {"$set": {"status": "processing", "worker_id": worker_id, "locked_at": now,
                      "updated_at": nowstr()}, "$inc": {"attempts": 1}},
            sort=[("priority", -1), ("seq", 1)], return_document=ReturnDocument.AFTER)
        return _message(doc) if doc else None

    async def finish_action(self, message_id: str, worker_id: str, status: str, *, error_message: str = "",
                            payload_update: dict[str, Any] | None = None) -> bool:
        checks.action_finish_status(status)
        sets: Doc = {"status": status, "error_message": error_message, "updated_at": nowstr(),
                     **_payload_sets(payload_update)}
        if status == "queued":  # released for another worker
            sets.update(worker_id=None, locked_at=None)
        result = await self._actions.update_one(
            {"_id": message_id, "status": "processing", "worker_id": worker_id}, {"$set": sets})
        return result.modified_count > 0

    async def update_action_progress(self, message_id: str, progress: float,
                                     payload_update: dict[str, Any] | None = None) -> bool:
        checks.action_progress(progress)
        result = await self._actions.update_one(
            {"_id": message_id, "status": "processing"},
            {"$set": {"progress": float(progress), "updated_at": nowstr(), **_payload_sets(payload_update)}})
        return result.matched_count > 0

    async def delete_actions_before(self, created_before: str) -> int:
        result = await self._actions.delete_many(
            {"status": {"$in": ["complete", "error"]}, "created_at": {"$lt": created_before}})
        return result.deleted_count
