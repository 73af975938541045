"""Quarantined hosts and sites (roles/quarantines.py) on MongoDB. Only the
quarantine loop adds them, under its lease, so find-then-insert is safe."""
from __future__ import annotations

from typing import Any

from .. import checks
from ..records import Quarantine, new_id, nowstr
from . import schema
from .base import Doc, MongoBase

FIELDS = ("kind", "name", "reason", "created", "expires", "lifted", "lifted_by")


def _from(doc: Doc) -> Quarantine:
    return Quarantine(doc["_id"], *(doc.get(f, "") for f in FIELDS))


class QuarantinesMixin(MongoBase):
    @property
    def _quarantines(self) -> Any:
        return self._db.get_collection(schema.QUARANTINES)

    async def add_quarantine(self, kind: str, name: str, reason: str, expires: str) -> tuple[Quarantine, bool]:
        checks.quarantine(kind, name)
        checks.text("reason", reason)
        now = nowstr()
        found = await self._quarantines.find_one({"kind": kind, "name": name, "lifted": "", "expires": {"$gt": now}},
                                                 sort=[("seq", -1)])
        if found is not None:
            return _from(found), False
        made = Quarantine(new_id(), kind, name, reason, now, expires)
        await self._quarantines.insert_one({"_id": made.quarantine_id, "seq": await self._next_seq("quarantine"),
                                            **{f: getattr(made, f) for f in FIELDS}})
        return made, True

    async def list_quarantines(self, *, active_at: str | None = None, limit: int = 100) -> list[Quarantine]:
        checks.count("limit", limit)
        query: Doc = {} if active_at is None else {"lifted": "", "expires": {"$gt": active_at}}
        docs = await self._quarantines.find(query).sort([("seq", -1)]).limit(limit).to_list()
        return [_from(d) for d in docs]

    async def lift_quarantine(self, quarantine_id: str, by: str) -> Quarantine | None:
        await self._quarantines.update_one({"_id": quarantine_id, "lifted": ""},
                                           {"$set": {"lifted": nowstr(), "lifted_by": by}})
        doc = await self._quarantines.find_one({"_id": quarantine_id})
        return None if doc is None else _from(doc)
