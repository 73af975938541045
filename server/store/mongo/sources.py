"""Module sources: content-addressed blobs and each config version's manifest."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from bson import Binary
from pymongo import DESCENDING, UpdateOne

from common.sources import sha512_of

from .. import checks
from ..errors import NotFoundError
from . import schema
from .base import MongoBase


class SourcesMixin(MongoBase):

    @property
    def _source_blobs(self) -> Any:
        return self._db[schema.SOURCE_BLOBS]

    @property
    def _config_sources(self) -> Any:
        return self._db[schema.CONFIG_SOURCES]

    async def put_source_blobs(self, blobs: Sequence[bytes]) -> list[str]:
        digests = [sha512_of(bytes(b)) for b in blobs]
        if digests:
            # the hash is the _id: concurrent puts of one blob upsert the same document
            await self._source_blobs.bulk_write(
                [UpdateOne({"_id": d}, {"$setOnInsert": {"content": Binary(bytes(b))}}, upsert=True)
                 for d, b in zip(digests, blobs)], ordered=False)
        return digests

    async def set_config_sources(self, dataset_id: str, version: int, manifest: Mapping[str, str]) -> None:
        files = checks.source_manifest(manifest)
        number = checks.whole_number("version", version)
        if await self._datasets.find_one({"_id": dataset_id}, {"_id": 1}) is None:
            raise NotFoundError(f"dataset {dataset_id} not found")
        wanted = set(files.values())
        found = {d["_id"] async for d in self._source_blobs.find({"_id": {"$in": sorted(wanted)}}, {"_id": 1})}
        checks.blobs_stored(files, found)
        # paths may hold dots, so the manifest is a list, not a document keyed by path
        await self._config_sources.update_one(
            {"_id": f"{dataset_id}/{number}"},
            {"$set": {"dataset_id": dataset_id, "version": number,
                      "files": [{"path": p, "sha512": d} for p, d in files.items()]}},
            upsert=True)

    async def get_config_sources(self, dataset_id: str, version: int | None = None) -> dict[str, str]:
        query: dict[str, Any] = {"dataset_id": dataset_id}
        if version is not None:
            query["version"] = {"$lte": version}
        doc = await self._config_sources.find_one(query, sort=[("version", DESCENDING)])
        return {f["path"]: f["sha512"] for f in (doc or {}).get("files", [])}

    async def get_source_blob(self, dataset_id: str, sha512: str) -> bytes | None:
        # a dataset has a manifest or two (submit, rarely more): read them, match here
        named = [f.get("sha512") async for doc in self._config_sources.find({"dataset_id": dataset_id}, {"files": 1})
                 for f in doc.get("files", [])]
        if sha512 not in named:
            return None
        doc = await self._source_blobs.find_one({"_id": sha512})
        return None if doc is None else bytes(doc["content"])
