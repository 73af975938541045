"""Logs: small ones inline, large or streamed ones in a chunk collection.

A log document holds its text in ``data`` while it stays under
``INLINE_LIMIT``; beyond that (at creation or when appends make it grow) the
text lives in ``log_chunks`` ({log_id, n, data}, unique (log_id, n)) and the
hot ``logs`` collection keeps only metadata, so listing a dataset's logs never
drags megabytes of text through the task pages. Reads reassemble the text.
Appends are one ``$inc`` of the chunk counter (atomic reservation of the
chunk number) plus one chunk insert, so concurrent appends never overwrite.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from pymongo import ReturnDocument

from .. import checks
from ..interface import NotFoundError
from ..query import ListOptions, LogFilter, Page, project
from ..records import Log, LogRef, NewLog, nowstr
from .base import Doc, MongoBase
from .docs import log_from
from .listing import page

#: Characters kept inline in the logs collection (IceProd moves logs over 1 MB to S3).
INLINE_LIMIT = 1_000_000
#: Size of one stored chunk of a large log (well under the 16 MB document limit).
CHUNK_SIZE = 1_000_000


class LogsMixin(MongoBase):
    async def _text(self, doc: Doc) -> str:
        if not doc.get("chunked"):
            return str(doc.get("data", ""))
        chunks = await self._chunks.find({"log_id": doc["_id"]}, {"data": 1}).sort("n", 1).to_list()
        return "".join(c["data"] for c in chunks)

    async def _log(self, doc: Doc) -> Log:
        return log_from(doc, await self._text(doc))

    async def add_log(self, log: NewLog) -> str:
        checks.text("log data", log.data)
        seq = await self._next_seq("log")
        doc: Doc = {"_id": log.log_id, "log_id": log.log_id, "name": log.name, "timestamp": nowstr(),
                    "dataset_id": log.dataset_id, "task_id": log.task_id, "attempt": log.attempt,
                    "size": len(log.data), "seq": seq}
        if len(log.data) <= INLINE_LIMIT:
            doc.update(data=log.data, chunked=False, chunks=0)
        else:
            # chunks first: a crash leaves orphan chunks, never a log missing text
            parts = [log.data[i:i + CHUNK_SIZE] for i in range(0, len(log.data), CHUNK_SIZE)]
            await self._chunks.delete_many({"log_id": log.log_id})
            for n, part in enumerate(parts):
                await self._chunks.insert_one({"log_id": log.log_id, "n": n, "data": part})
            doc.update(data="", chunked=True, chunks=len(parts))
        await self._logs.insert_one(doc)
        return log.log_id

    async def append_log(self, log_id: str, chunk: str) -> int:
        checks.text("a log chunk", chunk)
        doc = await self._logs.find_one({"_id": log_id}, {"chunked": 1, "size": 1})
        if doc is None:
            raise NotFoundError(f"log {log_id} not found")
        if not chunk:
            return int(doc.get("size", 0))
        if not doc.get("chunked"):
            # still inline: append in place while it stays small (one atomic update)
            small = await self._append_inline(log_id, chunk)
            if small is not None:
                return small
            await self._to_chunks(log_id)
        # reserve the next chunk number atomically, then write it
        after = await self._logs.find_one_and_update(
            {"_id": log_id}, {"$inc": {"chunks": 1, "size": len(chunk)}},
            return_document=ReturnDocument.AFTER)
        if after is None:
            raise NotFoundError(f"log {log_id} not found")
        await self._chunks.insert_one({"log_id": log_id, "n": int(after["chunks"]) - 1, "data": chunk})
        return int(after["size"])

    async def _append_inline(self, log_id: str, chunk: str) -> int | None:
        """Append to an inline log if the result stays inline; None when it would not."""
        while True:
            doc = await self._logs.find_one({"_id": log_id}, {"data": 1, "size": 1, "chunked": 1})
            if doc is None:
                raise NotFoundError(f"log {log_id} not found")
            if doc.get("chunked"):
                return None
            data = str(doc.get("data", ""))
            if len(data) + len(chunk) > INLINE_LIMIT:
                return None
            result = await self._logs.update_one(
                {"_id": log_id, "chunked": False, "size": doc["size"]},
                {"$set": {"data": data + chunk, "size": len(data) + len(chunk)}})
            if result.modified_count:
                return len(data) + len(chunk)

    async def _to_chunks(self, log_id: str) -> None:
        """Move an inline log's text into chunk 0 (idempotent, crash-safe order)."""
        doc = await self._logs.find_one({"_id": log_id}, {"data": 1, "chunked": 1})
        if doc is None or doc.get("chunked"):
            return
        await self._chunks.update_one({"log_id": log_id, "n": 0},
                                      {"$setOnInsert": {"data": str(doc.get("data", ""))}}, upsert=True)
        await self._logs.update_one({"_id": log_id, "chunked": False},
                                    {"$set": {"chunked": True, "chunks": 1, "data": ""}})

    async def get_log(self, log_id: str) -> Log | None:
        doc = await self._logs.find_one({"_id": log_id})
        return await self._log(doc) if doc else None

    async def list_logs(self, filter: LogFilter = LogFilter(), opts: ListOptions = ListOptions()) -> Page:
        query: Doc = {}
        if filter.dataset_id is not None:
            query["dataset_id"] = filter.dataset_id
        if filter.task_id is not None:
            query["task_id"] = filter.task_id
        if filter.name is not None:
            query["name"] = {"$in": list(filter.name)}
        bounds: Doc = {}
        if filter.from_time is not None:
            bounds["$gte"] = filter.from_time
        if filter.to_time is not None:
            bounds["$lte"] = filter.to_time
        if bounds:
            query["timestamp"] = bounds
        raw = await page(self._logs, query, replace(opts, keys=None), sort=[("seq", 1)],
                         to_doc=lambda d: d, id_field="log_id")
        wants_data = opts.keys is None or "data" in opts.keys
        rows = [project(log_from(d, await self._text(d) if wants_data else "").to_doc(), opts.keys, "log_id")
                for d in raw.rows]
        return Page(rows=rows, next_cursor=raw.next_cursor)

    async def task_logs(self, task_id: str, *, num: int | None = None, group: bool = False,
                        order: str = "desc") -> list[Log]:
        checks.task_logs_args(order, num)
        docs = await self._logs.find({"task_id": task_id}).sort([("timestamp", -1), ("seq", -1)]).to_list()
        if group:
            newest: dict[str, Doc] = {}
            for d in docs:
                newest.setdefault(d["name"], d)
            docs = list(newest.values())
        if order == "asc":
            docs.reverse()
        if num is not None:
            docs = docs[:num]
        return [await self._log(d) for d in docs]

    async def delete_log(self, log_id: str) -> bool:
        result = await self._logs.delete_one({"_id": log_id})
        await self._chunks.delete_many({"log_id": log_id})
        return result.deleted_count > 0

    async def delete_logs(self, *, dataset_id: str | None = None, task_id: str | None = None) -> int:
        checks.log_selection(dataset_id, task_id)
        query: Doc = {}
        if dataset_id is not None:
            query["dataset_id"] = dataset_id
        if task_id is not None:
            query["task_id"] = task_id
        ids = [d["_id"] for d in await self._logs.find(query, {"_id": 1}).to_list()]
        if not ids:
            return 0
        result = await self._logs.delete_many({"_id": {"$in": ids}})
        await self._chunks.delete_many({"log_id": {"$in": ids}})
        return result.deleted_count


    async def logs_before(self, before: str, *, name: str | None = None, dataset_id: str | None = None,
                          after: tuple[str, str] | None = None, limit: int = 1000) -> list[LogRef]:
        checks.count("limit", limit)
        query: Doc = {"timestamp": {"$lt": before}}
        if name is not None:
            query["name"] = name
        if dataset_id is not None:
            query["dataset_id"] = dataset_id
        if after is not None:
            query = {"$and": [query, {"$or": [{"timestamp": {"$gt": after[0]}},
                                              {"timestamp": after[0], "log_id": {"$gt": after[1]}}]}]}
        fields = {"name": 1, "timestamp": 1, "dataset_id": 1, "task_id": 1, "attempt": 1, "size": 1}
        docs = await self._logs.find(query, fields).sort([("timestamp", 1), ("log_id", 1)]).limit(limit).to_list()
        return [LogRef(d["_id"], d["name"], d["timestamp"], d.get("dataset_id", ""), d.get("task_id", ""),
                       d.get("attempt"), d.get("size", 0)) for d in docs]

    async def log_names(self) -> dict[str, tuple[int, str]]:
        rows = await (await self._logs.aggregate([
            {"$group": {"_id": "$name", "count": {"$sum": 1}, "oldest": {"$min": "$timestamp"}}},
            {"$sort": {"_id": 1}}])).to_list()
        return {row["_id"]: (row["count"], row["oldest"]) for row in rows}

    async def delete_log_ids(self, log_ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(log_ids))
        if not ids:
            return 0
        result = await self._logs.delete_many({"_id": {"$in": ids}})
        await self._chunks.delete_many({"log_id": {"$in": ids}})
        return result.deleted_count
