"""Stored credentials (secrets stay encrypted blobs here)."""
from __future__ import annotations

from typing import Any, Sequence

from pymongo import ReplaceOne

from .. import checks
from ..records.credentials import Credential
from . import schema
from .base import MongoBase

Doc = dict[str, Any]


def _key(owner_kind: str, owner: str, url: str) -> Doc:
    return {"owner_kind": owner_kind, "owner": owner, "url": url}


def _from(doc: Doc) -> Credential:
    return Credential(owner_kind=doc["owner_kind"], owner=doc["owner"], url=doc["url"], type=doc["type"],
                      secret=doc["secret"], transfer_prefix=doc.get("transfer_prefix", ""),
                      scope=doc.get("scope", ""), buckets=list(doc.get("buckets", [])),
                      expiration=doc.get("expiration"), refreshable=bool(doc.get("refreshable")),
                      last_use=doc.get("last_use"), last_refresh=doc.get("last_refresh"),
                      refresh_error=doc.get("refresh_error", ""), created=doc.get("created", ""))


class CredentialsMixin(MongoBase):

    @property
    def _credentials(self) -> Any:
        return self._db[schema.CREDENTIALS]

    async def put_credential(self, credential: Credential) -> bool:
        checks.credential(credential)
        c = credential
        doc = {**_key(c.owner_kind, c.owner, c.url), "type": c.type, "secret": c.secret,
               "transfer_prefix": c.transfer_prefix, "scope": c.scope, "buckets": list(c.buckets),
               "expiration": c.expiration, "refreshable": c.refreshable, "last_use": c.last_use,
               "last_refresh": c.last_refresh, "refresh_error": c.refresh_error, "created": c.created}
        # one atomic upsert keyed by the unique (owner_kind, owner, url) index
        result = await self._credentials.bulk_write(
            [ReplaceOne(_key(c.owner_kind, c.owner, c.url), doc, upsert=True)])
        return result.upserted_count > 0

    async def get_credential(self, owner_kind: str, owner: str, url: str) -> Credential | None:
        doc = await self._credentials.find_one(_key(owner_kind, owner, url))
        return None if doc is None else _from(doc)

    async def list_credentials(self, owner_kind: str, owners: Sequence[str]) -> list[Credential]:
        names = list(owners)
        if not names:
            return []
        cursor = self._credentials.find({"owner_kind": owner_kind, "owner": {"$in": names}}).sort(
            [("owner", 1), ("url", 1)])
        return [_from(d) for d in await cursor.to_list()]

    async def delete_credentials(self, owner_kind: str, owner: str, url: str | None = None) -> int:
        query: Doc = {"owner_kind": owner_kind, "owner": owner}
        if url is not None:
            query["url"] = url
        return (await self._credentials.delete_many(query)).deleted_count

    async def credentials_to_refresh(self, expiring_before: float, used_after: float,
                                     limit: int = 100) -> list[Credential]:
        # $lt on a number only matches numbers (MongoDB's type bracketing): no null expirations
        # "never used, or used after": NOT(last_use <= used_after), since null is not <= a number
        query = {"refreshable": True, "expiration": {"$lt": expiring_before},
                 "$nor": [{"last_use": {"$lte": used_after}}]}
        cursor = self._credentials.find(query).sort("expiration", 1).limit(int(limit))
        return [_from(d) for d in await cursor.to_list()]

    async def record_refresh(self, credential: Credential, *, secret: str | None, expiration: float | None,
                             when: float, error: str = "") -> bool:
        match = {**_key(credential.owner_kind, credential.owner, credential.url),
                 "secret": credential.secret}
        if secret is not None:
            change = {"secret": secret, "expiration": expiration, "last_refresh": when, "refresh_error": ""}
        else:
            change = {"refresh_error": error}
        return (await self._credentials.update_one(match, {"$set": change})).matched_count > 0

    async def touch_credential(self, credential: Credential, when: float) -> None:
        await self._credentials.update_one(_key(credential.owner_kind, credential.owner, credential.url),
                                           {"$set": {"last_use": when}})
