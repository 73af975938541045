"""Pilots: registration, heartbeats (with the drain flag), states."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from .. import checks
from ..interface import ConflictError
from ..records import HeartbeatReply, NewPilot, Pilot, nowstr
from .base import Doc, MongoBase
from .docs import pilot_from

class PilotsMixin(MongoBase):
    async def register_pilot(self, pilot: NewPilot) -> str:
        record = Pilot(pilot_id=pilot.pilot_id, resources=dict(pilot.resources), free=dict(pilot.resources),
                       site=pilot.site, hostname=pilot.hostname, os=list(pilot.os), provider=pilot.provider,
                       provider_job_id=pilot.provider_job_id, version=pilot.version, state="active",
                       drain=False, tasks=[], registered=nowstr(), last_seen=time.time())
        seq = await self._next_seq("pilot")
        try:
            await self._pilots.insert_one({"_id": pilot.pilot_id, **record.to_doc(), "seq": seq})
        except DuplicateKeyError:
            raise ConflictError(f"pilot {pilot.pilot_id} is already registered") from None
        return pilot.pilot_id

    async def pilot_heartbeat(self, pilot_id: str, free: dict[str, Any] | None,
                              tasks: Sequence[str]) -> HeartbeatReply:
        sets: Doc = {"last_seen": time.time(), "tasks": list(tasks)}
        if free is not None:
            sets["free"] = dict(free)
        doc = await self._pilots.find_one_and_update({"_id": pilot_id}, {"$set": sets},
                                                     projection={"drain": 1},
                                                     return_document=ReturnDocument.AFTER)
        if doc is None:
            return HeartbeatReply(found=False)
        return HeartbeatReply(found=True, drain=bool(doc.get("drain")))

    async def get_pilot(self, pilot_id: str) -> Pilot | None:
        doc = await self._pilots.find_one({"_id": pilot_id})
        return pilot_from(doc) if doc else None

    async def list_pilots(self, *, site: str | None = None, state: str | None = None) -> list[Pilot]:
        query: Doc = {}
        if site is not None:
            query["site"] = site
        if state is not None:
            query["state"] = checks.pilot_state(state)
        return [pilot_from(d) for d in await self._pilots.find(query).sort("seq", 1).to_list()]

    async def set_pilot_drain(self, pilot_id: str, drain: bool = True) -> bool:
        result = await self._pilots.update_one({"_id": pilot_id}, {"$set": {"drain": bool(drain)}})
        return result.matched_count > 0

    async def set_pilot_state(self, pilot_id: str, state: str) -> bool:
        result = await self._pilots.update_one({"_id": pilot_id}, {"$set": {"state": checks.pilot_state(state)}})
        return result.matched_count > 0

    async def mark_lost_pilots(self, last_seen_before: float) -> list[str]:
        silent = {"state": "active", "last_seen": {"$lt": last_seen_before}}
        lost: list[str] = []
        for doc in await self._pilots.find(silent, {"_id": 1}).sort("seq", 1).to_list():
            # guarded again: a heartbeat arriving meanwhile keeps the pilot active
            result = await self._pilots.update_one({"_id": doc["_id"], **silent}, {"$set": {"state": "lost"}})
            if result.modified_count:
                lost.append(doc["_id"])
        return lost

    async def delete_pilot(self, pilot_id: str) -> bool:
        return (await self._pilots.delete_one({"_id": pilot_id})).deleted_count > 0
