"""Attempts across tasks (roles/attempt_queries.py) on MongoDB: the ``end`` and
``dataset_end`` indexes serve every query."""
from __future__ import annotations

from typing import Any, Sequence

from ..query import decode_cursor, encode_cursor
from ..records import Attempt
from .base import MongoBase
from .docs import attempt_from

_IN_CHUNK = 1000


class AttemptQueriesMixin(MongoBase):
    async def attempts_ended(self, since: str, until: str, *, after: str | None = None,
                             limit: int = 5000) -> tuple[list[Attempt], str | None]:
        return await self._ended({}, since, until, after, limit)

    async def _ended(self, match: dict[str, Any], since: str, until: str | None, after: str | None,
                     limit: int) -> tuple[list[Attempt], str | None]:
        """Pages by (end, _id) from ``since``. The upper bound is applied to the
        sorted page, not in the query: nx-27017 (the test server) answers
        nothing to ``$gte`` and ``$lt`` together on ``end``; a real MongoDB
        reads the same rows either way."""
        query: dict[str, Any] = {**match, "end": {"$gte": since}}
        if after is not None:
            end, key = decode_cursor(after, 2)
            query = {"$and": [query, {"$or": [{"end": {"$gt": end}}, {"end": end, "_id": {"$gt": key}}]}]}
        docs = await self._attempts.find(query).sort([("end", 1), ("_id", 1)]).limit(limit).to_list()
        cursor = encode_cursor([docs[-1]["end"], docs[-1]["_id"]]) if len(docs) == limit else None
        if until is not None and docs and docs[-1]["end"] >= until:
            cursor = None
        return [attempt_from(d) for d in docs if since <= d["end"] and (until is None or d["end"] < until)], cursor

    async def dataset_attempts(self, dataset_id: str, *, since: str | None = None, until: str | None = None,
                               after: str | None = None, limit: int = 2000) -> tuple[list[Attempt], str | None]:
        return await self._ended({"dataset_id": dataset_id}, since or "", until, after, limit)

    async def recent_attempts(self, dataset_id: str, *, status: str | None = None,
                              limit: int = 1000) -> list[Attempt]:
        query: dict[str, Any] = {"dataset_id": dataset_id, "end": {"$ne": None}}
        if status is not None:
            query["status"] = status
        docs = await self._attempts.find(query).sort([("dataset_id", 1), ("end", -1)]).limit(limit).to_list()
        return [attempt_from(d) for d in docs]

    async def count_attempts_ended(self, dataset_id: str, since: str, *, status: str | None = None) -> int:
        query: dict[str, Any] = {"dataset_id": dataset_id, "end": {"$gte": since}}
        if status is not None:
            query["status"] = status
        return int(await self._attempts.count_documents(query))

    async def last_attempts(self, task_ids: Sequence[str]) -> dict[str, Attempt]:
        ids = list(dict.fromkeys(task_ids))
        out: dict[str, Attempt] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            docs = await self._attempts.find({"task_id": {"$in": ids[start:start + _IN_CHUNK]}}).sort(
                [("task_id", 1), ("attempt", 1)]).to_list()
            out.update((d["task_id"], attempt_from(d)) for d in docs)  # the last one of each task wins
        return out
