"""Mongo only (issue 17): the indexes the scale algorithms need exist with
the key shapes docs/store-mongo.md states, and an older store's replaced
indexes are dropped when the store opens."""
from __future__ import annotations

import pytest
from pymongo import IndexModel

from server.store.mongo import open_mongo_store
from server.store.mongo.schema import RELEASE_KEY, WAITING_KEY


def _fields(info: dict) -> set[tuple[str, ...]]:
    """Key fields of each index (nx-27017 ignores index names and directions)."""
    return {tuple(k for k, _ in ix["key"]) for ix in info.values()}


@pytest.mark.parametrize("backend", ["mongo"])
async def test_scale_indexes_and_retired_ones(store_url: str) -> None:
    s = await open_mongo_store(store_url, transactions=False)
    try:
        # an index of the previous version, as an old store has it
        await s._tasks.create_indexes([IndexModel([("status", 1), ("priority", -1), ("seq", 1)],
                                                  name="status_priority")])
    finally:
        await s.close()
    s = await open_mongo_store(store_url, transactions=False)
    try:
        tasks = _fields(await s._tasks.index_information())
        jobs = _fields(await s._jobs.index_information())
        assert ("status", "priority", "seq") not in tasks
        assert tuple(k for k, _ in WAITING_KEY) in tasks and tuple(k for k, _ in RELEASE_KEY) in tasks
        assert ("dataset_id", "status", "seq") in jobs and ("dataset_id", "status") not in jobs
    finally:
        await s.close()
