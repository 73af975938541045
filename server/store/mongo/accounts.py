"""Users, groups, consumed core-hours, and the background-loop leases."""
from __future__ import annotations

import time

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from .. import checks
from ..interface import ConflictError
from ..records import Group, Revocation, Usage, User, new_id
from .base import MongoBase
from .docs import user_from


class AccountsMixin(MongoBase):
    # ------------------------------------------------------------ users

    async def create_user(self, username: str, priority: float = 0.5) -> User:
        user = User(user_id=new_id(), username=username, priority=checks.priority(priority))
        try:
            await self._users.insert_one({"_id": username, **user.to_doc()})
        except DuplicateKeyError:
            raise ConflictError(f"user {username!r} already exists") from None
        return user

    async def ensure_user(self, username: str) -> User:
        # idempotent upsert, then read: whoever inserted first defines user_id
        await self._users.update_one(
            {"_id": username}, {"$setOnInsert": {"user_id": new_id(), "username": username, "priority": 0.5}},
            upsert=True)
        doc = await self._users.find_one({"_id": username})
        if doc is None:  # deleted between the two calls: create it again
            return await self.ensure_user(username)
        return user_from(doc)

    async def get_user(self, username: str) -> User | None:
        doc = await self._users.find_one({"_id": username})
        return user_from(doc) if doc else None

    async def list_users(self) -> list[User]:
        return [user_from(d) for d in await self._users.find({}).sort("_id", 1).to_list()]

    async def set_user_priority(self, username: str, priority: float) -> bool:
        result = await self._users.update_one({"_id": username}, {"$set": {"priority": checks.priority(priority)}})
        return result.matched_count > 0

    async def delete_user(self, username: str) -> bool:
        return (await self._users.delete_one({"_id": username})).deleted_count > 0

    # ------------------------------------------------------------ groups

    async def create_group(self, name: str, priority: float = 0.5) -> Group:
        group = Group(name=name, priority=checks.priority(priority))
        try:
            await self._groups.insert_one({"_id": name, **group.to_doc()})
        except DuplicateKeyError:
            raise ConflictError(f"group {name!r} already exists") from None
        return group

    async def list_groups(self) -> list[Group]:
        docs = await self._groups.find({}).sort("_id", 1).to_list()
        return [Group(name=d["name"], priority=d["priority"]) for d in docs]

    async def set_group_priority(self, name: str, priority: float) -> bool:
        result = await self._groups.update_one({"_id": name}, {"$set": {"priority": checks.priority(priority)}})
        return result.matched_count > 0

    async def delete_group(self, name: str) -> bool:
        return (await self._groups.delete_one({"_id": name})).deleted_count > 0

    # ------------------------------------------------------------ usage (fair share)

    async def add_usage(self, username: str, group: str, core_hours: float) -> None:
        core_hours = checks.core_hours(core_hours)
        ops = [UpdateOne({"_id": f"{kind}:{name}"},
                         {"$inc": {"core_hours": core_hours}, "$setOnInsert": {"kind": kind, "name": name}},
                         upsert=True)
               for kind, name in (("user", username), ("group", group))]
        await self._usage.bulk_write(ops, ordered=False)

    async def list_usage(self) -> list[Usage]:
        docs = await self._usage.find({}).sort([("kind", 1), ("name", 1)]).to_list()
        return [Usage(kind=d["kind"], name=d["name"], core_hours=d["core_hours"]) for d in docs]

    # ------------------------------------------------------------ token revocations

    async def revoke_tokens(self, subject: str, revoked_at: float, deleted: bool | None = None) -> None:
        update: dict = {"$max": {"revoked_at": float(revoked_at)}}
        if deleted is not None:
            update["$set"] = {"deleted": bool(deleted)}
        else:
            update["$setOnInsert"] = {"deleted": False}
        await self._revocations.update_one({"_id": subject}, update, upsert=True)

    async def list_revocations(self) -> list[Revocation]:
        docs = await self._revocations.find({}).to_list()
        return [Revocation(d["_id"], float(d["revoked_at"]), bool(d.get("deleted"))) for d in docs]

    # ------------------------------------------------------------ loop leases

    async def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        checks.lease_seconds(seconds, "seconds")
        now = time.time()
        try:
            # matches when free (expired) or already ours; otherwise the upsert
            # collides with the holder's document on _id and loses
            doc = await self._leases.find_one_and_update(
                {"_id": name, "$or": [{"holder": holder}, {"expires": {"$lt": now}}]},
                {"$set": {"holder": holder, "expires": now + seconds}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return False
        return doc is not None and doc.get("holder") == holder

    async def release_lease(self, name: str, holder: str) -> bool:
        return (await self._leases.delete_one({"_id": name, "holder": holder})).deleted_count > 0
