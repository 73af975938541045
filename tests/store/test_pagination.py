"""Contract: cursor pagination walks every row once, also while rows are added."""
from __future__ import annotations

import pytest

from server.store import InvalidQuery, JobFilter, ListOptions, Store, TaskFilter

from .helpers import chain_jobs, new_dataset


async def _walk(store: Store, f: TaskFilter, opts: ListOptions) -> list[dict]:
    rows: list[dict] = []
    after = None
    while True:
        page = await store.list_tasks(f, ListOptions(keys=opts.keys, limit=opts.limit, after=after, sort=opts.sort))
        rows.extend(page.rows)
        if page.next_cursor is None:
            return rows
        after = page.next_cursor


async def test_walk_all_pages_no_duplicates_no_misses(store: Store) -> None:
    ds = await new_dataset(store, jobs=25, tasks_per_job=2)
    jobs = chain_jobs(25)
    await store.create_jobs(ds.dataset_id, jobs)
    rows = await _walk(store, TaskFilter(dataset_id=ds.dataset_id), ListOptions(limit=7, keys=["name"]))
    ids = [r["task_id"] for r in rows]
    assert len(ids) == 50 and set(ids) == {t.task_id for j in jobs for t in j.tasks}
    assert ids == [t.task_id for j in jobs for t in j.tasks]  # creation order by default


async def test_sorted_walk_with_ties(store: Store) -> None:
    ds = await new_dataset(store, jobs=20, tasks_per_job=1)
    jobs = chain_jobs(20, names=("x",))
    await store.create_jobs(ds.dataset_id, jobs)
    await store.set_priorities([(j.tasks[0].task_id, float(i % 3)) for i, j in enumerate(jobs)])
    rows = await _walk(store, TaskFilter(dataset_id=ds.dataset_id),
                       ListOptions(limit=4, sort=[("priority", -1), ("job_index", 1)], keys=["priority", "job_index"]))
    keys = [(-r["priority"], r["job_index"]) for r in rows]
    assert keys == sorted(keys) and len(rows) == 20 and len({r["task_id"] for r in rows}) == 20


async def test_walk_is_stable_under_inserts(store: Store) -> None:
    ds = await new_dataset(store, jobs=60, tasks_per_job=2)
    first = chain_jobs(20)
    await store.create_jobs(ds.dataset_id, first)
    seen: list[str] = []
    after = None
    next_index = 20
    while True:
        page = await store.list_tasks(TaskFilter(dataset_id=ds.dataset_id), ListOptions(limit=6, after=after))
        seen.extend(r["task_id"] for r in page.rows)
        if next_index < 60:  # others keep materializing jobs while we read
            await store.create_jobs(ds.dataset_id, chain_jobs(5, first_index=next_index))
            next_index += 5
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert len(seen) == len(set(seen))  # no duplicates
    assert {t.task_id for j in first for t in j.tasks} <= set(seen)  # nothing that existed was missed


async def test_job_pagination_and_bad_cursor(store: Store) -> None:
    ds = await new_dataset(store, jobs=9)
    await store.create_jobs(ds.dataset_id, chain_jobs(9))
    page = await store.list_jobs(JobFilter(dataset_id=ds.dataset_id), ListOptions(limit=5))
    assert len(page.rows) == 5 and page.next_cursor
    rest = await store.list_jobs(JobFilter(dataset_id=ds.dataset_id), ListOptions(limit=5, after=page.next_cursor))
    assert len(rest.rows) == 4 and rest.next_cursor is None
    assert {r["job_index"] for r in page.rows + rest.rows} == set(range(9))
    with pytest.raises(InvalidQuery, match="cursor"):
        await store.list_jobs(JobFilter(dataset_id=ds.dataset_id), ListOptions(limit=5, after="!!not-a-cursor"))
    with pytest.raises(InvalidQuery, match="cannot sort"):
        await store.list_tasks(TaskFilter(dataset_id=ds.dataset_id), ListOptions(sort=[("requirements", 1)]))
    with pytest.raises(InvalidQuery, match="limit"):
        ListOptions(limit=0)
