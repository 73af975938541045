"""Contract: datasets, config versions, rights."""
from __future__ import annotations

import asyncio

import pytest

from server.store import (
    ConflictError, DatasetFilter, DatasetRights, InvalidArgumentError, InvalidQuery, ListOptions, NewDataset,
    NotFoundError, Store,
)
from server.store.rules import config_sha256

from .helpers import new_dataset


async def test_create_and_get(store: Store) -> None:
    ds = await new_dataset(store, jobs=10, tasks_per_job=3, priority=0.7, debug=True)
    assert ds.dataset == 1 and ds.status == "processing" and ds.tasks_submitted == 30
    assert ds.priority == 0.7 and ds.debug and not ds.truncated
    assert await store.get_dataset(ds.dataset_id) == ds
    assert await store.get_dataset_by_number(1) == ds
    assert await store.get_dataset("nope") is None
    assert await store.get_dataset_by_number(99) is None
    doc = ds.to_doc()
    assert doc["dataset_id"] == ds.dataset_id and doc["group"] == "simprod"


async def test_dataset_numbers_are_sequential_under_concurrency(store: Store) -> None:
    created = await asyncio.gather(*(new_dataset(store) for _ in range(25)))
    assert sorted(d.dataset for d in created) == list(range(1, 26))


async def test_duplicate_dataset_id_and_bad_values(store: Store) -> None:
    ds = await new_dataset(store, dataset_id="fixed-id")
    with pytest.raises(ConflictError):
        await new_dataset(store, dataset_id="fixed-id")
    with pytest.raises(InvalidArgumentError, match="status"):
        await store.create_dataset(NewDataset("d", 1, 1, "g", "u", status="bogus"))
    with pytest.raises(InvalidArgumentError, match="jobs_submitted"):
        await store.create_dataset(NewDataset("d", -1, 1, "g", "u"))
    assert ds.dataset == 1


async def test_list_filters_and_keys(store: Store) -> None:
    a = await new_dataset(store, group="simprod", username="alice")
    b = await new_dataset(store, group="users", username="bob")
    c = await new_dataset(store, group="users", username="carol")
    assert await store.set_dataset_status(c.dataset_id, "suspended")
    page = await store.list_datasets(DatasetFilter(groups=["users"]))
    assert [r["dataset_id"] for r in page.rows] == [b.dataset_id, c.dataset_id]
    page = await store.list_datasets(DatasetFilter(status=["processing"], users=["alice", "bob"]),
                                     ListOptions(keys=["dataset", "status"]))
    assert page.rows == [{"dataset_id": a.dataset_id, "dataset": 1, "status": "processing"},
                         {"dataset_id": b.dataset_id, "dataset": 2, "status": "processing"}]
    page = await store.list_datasets(DatasetFilter(dataset_ids=[c.dataset_id]))
    assert [r["dataset"] for r in page.rows] == [3]
    with pytest.raises(InvalidQuery, match="unknown dataset status"):
        await store.list_datasets(DatasetFilter(status=["running"]))
    summary = await store.dataset_status_summary()
    assert summary == {"processing": [a.dataset_id, b.dataset_id], "suspended": [c.dataset_id]}


async def test_update_fields_and_jobs_submitted(store: Store) -> None:
    ds = await new_dataset(store, jobs=10, tasks_per_job=3)
    assert await store.update_dataset(ds.dataset_id, description="new", priority=0.9, debug=True)
    assert not await store.update_dataset("missing", description="x")
    got = await store.get_dataset(ds.dataset_id)
    assert got and got.description == "new" and got.priority == 0.9 and got.debug
    updated = await store.set_jobs_submitted(ds.dataset_id, 20)
    assert updated.jobs_submitted == 20 and updated.tasks_submitted == 60
    with pytest.raises(InvalidArgumentError, match="only increase"):
        await store.set_jobs_submitted(ds.dataset_id, 5)
    with pytest.raises(NotFoundError):
        await store.set_jobs_submitted("missing", 5)
    frozen = await new_dataset(store, jobs_immutable=True)
    with pytest.raises(InvalidArgumentError, match="jobs_immutable"):
        await store.set_jobs_submitted(frozen.dataset_id, 50)


@pytest.mark.parametrize("status, after", [("complete", "processing"), ("errors", "processing"),
                                           ("suspended", "suspended"), ("processing", "processing")])
async def test_more_jobs_reopen_a_finished_dataset(store: Store, status: str, after: str) -> None:
    ds = await new_dataset(store, jobs=2)
    assert await store.set_dataset_status(ds.dataset_id, status, force=True) or status == "processing"
    assert (await store.set_jobs_submitted(ds.dataset_id, 2)).status == status  # no new jobs: unchanged
    assert (await store.set_jobs_submitted(ds.dataset_id, 5)).status == after
    assert (await store.get_dataset(ds.dataset_id)).status == after


async def test_truncate(store: Store) -> None:
    ds = await new_dataset(store)
    assert await store.truncate_dataset(ds.dataset_id)
    assert (await store.get_dataset(ds.dataset_id)).truncated  # type: ignore[union-attr]
    assert not await store.truncate_dataset("missing")
    done = await new_dataset(store, status="complete")
    with pytest.raises(InvalidArgumentError, match="complete"):
        await store.truncate_dataset(done.dataset_id)


async def test_guarded_dataset_status(store: Store) -> None:
    ds = await new_dataset(store)
    assert await store.set_dataset_status(ds.dataset_id, "suspended")
    assert not await store.set_dataset_status(ds.dataset_id, "suspended")  # already there: unchanged
    assert not await store.set_dataset_status(ds.dataset_id, "complete")  # suspended -> complete refused
    assert (await store.get_dataset(ds.dataset_id)).status == "suspended"  # type: ignore[union-attr]
    assert await store.set_dataset_status(ds.dataset_id, "complete", force=True)
    assert not await store.set_dataset_status(ds.dataset_id, "processing")  # complete is final
    assert await store.set_dataset_status(ds.dataset_id, "processing", force=True)  # hard reset
    assert not await store.set_dataset_status("missing", "suspended")
    with pytest.raises(InvalidArgumentError):
        await store.set_dataset_status(ds.dataset_id, "bogus")


async def test_config_versions_are_immutable_and_newest_is_current(store: Store) -> None:
    ds = await new_dataset(store)
    assert await store.get_config(ds.dataset_id) is None
    v1 = await store.add_config_version(ds.dataset_id, {"tasks": [{"name": "a"}], "version": 3}, "alice", "first")
    v2 = await store.add_config_version(ds.dataset_id, {"version": 3, "tasks": [{"name": "b"}]}, "bob")
    assert (v1, v2) == (1, 2)
    current = await store.get_config(ds.dataset_id)
    assert current and current.version == 2 and current.author == "bob" and current.config["tasks"][0]["name"] == "b"
    first = await store.get_config(ds.dataset_id, 1)
    assert first and first.comment == "first" and first.config == {"tasks": [{"name": "a"}], "version": 3}
    assert first.sha256 == config_sha256({"version": 3, "tasks": [{"name": "a"}]})  # key order irrelevant
    assert [c.version for c in await store.list_config_versions(ds.dataset_id)] == [1, 2]
    assert await store.get_config(ds.dataset_id, 7) is None
    with pytest.raises(NotFoundError):
        await store.add_config_version("missing", {}, "x")


async def test_concurrent_config_versions_get_distinct_numbers(store: Store) -> None:
    ds = await new_dataset(store)
    versions = await asyncio.gather(*(store.add_config_version(ds.dataset_id, {"n": i}, "a") for i in range(10)))
    assert sorted(versions) == list(range(1, 11))


async def test_rights_in_bulk(store: Store) -> None:
    a, b, c = [await new_dataset(store) for _ in range(3)]
    await store.set_dataset_rights(a.dataset_id, DatasetRights(read_groups=["users"], write_users=["alice"]))
    await store.set_dataset_rights(b.dataset_id, DatasetRights(read_users=["bob"]))
    await store.set_dataset_rights(b.dataset_id, DatasetRights(read_users=["bob", "carol"]))  # replaces
    rights = await store.rights_for([a.dataset_id, b.dataset_id, c.dataset_id])
    assert rights == {a.dataset_id: DatasetRights(["users"], [], [], ["alice"]),
                      b.dataset_id: DatasetRights([], [], ["bob", "carol"], [])}
    assert await store.rights_for([]) == {}
