"""Contract: job and dataset status follow their tasks at once."""
from __future__ import annotations

from server.store import JobFilter, Store

from .helpers import chain_jobs, new_dataset


async def _dataset(store: Store, jobs: int = 2, submitted: int | None = None, **kw: object):
    ds = await new_dataset(store, jobs=submitted or jobs, tasks_per_job=2, **kw)
    job_list = chain_jobs(jobs, chain=False)
    await store.create_jobs(ds.dataset_id, job_list)
    return ds, job_list


async def test_job_rollup(store: Store) -> None:
    ds, jobs = await _dataset(store)
    j0, j1 = jobs
    assert await store.rollup_job(j0.job_id) is None  # idle tasks: still processing
    await store.bulk_task_status("complete", task_ids=[t.task_id for t in j0.tasks], force=True)
    await store.bulk_task_status("failed", task_ids=[j1.tasks[0].task_id], force=True)
    assert await store.rollup_jobs([j0.job_id, j1.job_id, "missing"]) == {j0.job_id: "complete",
                                                                          j1.job_id: "errors"}
    assert await store.rollup_jobs([j0.job_id, j1.job_id]) == {}  # nothing new
    await store.bulk_task_status("idle", task_ids=[j1.tasks[0].task_id])  # reset the failed task
    assert await store.rollup_job(j1.job_id) == "processing"
    await store.bulk_task_status("suspended", task_ids=[t.task_id for t in j1.tasks])
    assert await store.rollup_job(j1.job_id) == "suspended"
    assert await store.job_counts_by_status(ds.dataset_id) == {"complete": 1, "suspended": 1}
    await store.bulk_task_status("idle", task_ids=[j0.tasks[0].task_id], force=True)  # hard reset of a task
    assert await store.rollup_job(j0.job_id) is None  # complete jobs stay complete (only a hard reset reopens)


async def test_dataset_rollup(store: Store) -> None:
    ds, jobs = await _dataset(store, jobs=2, submitted=3)
    all_tasks = [t.task_id for j in jobs for t in j.tasks]
    await store.bulk_task_status("complete", task_ids=all_tasks, force=True)
    await store.rollup_jobs([j.job_id for j in jobs])
    assert await store.rollup_dataset(ds.dataset_id) is None  # 2 of 3 jobs exist: more are coming
    await store.create_jobs(ds.dataset_id, chain_jobs(1, first_index=2, status="complete", chain=False))
    third = await store.list_jobs(JobFilter(dataset_id=ds.dataset_id, job_index=2))
    await store.rollup_jobs([third.rows[0]["job_id"]])
    assert await store.rollup_dataset(ds.dataset_id) == "complete"
    assert (await store.get_dataset(ds.dataset_id)).status == "complete"  # type: ignore[union-attr]


async def test_job_and_dataset_in_one_call(store: Store) -> None:
    """What a report rolls up: the job, then its dataset only when the job changed."""
    ds, jobs = await _dataset(store, jobs=2)
    first, second = jobs
    assert await store.rollup_job_and_dataset(first.job_id, ds.dataset_id) == {}
    await store.bulk_task_status("complete", task_ids=[t.task_id for t in first.tasks], force=True)
    assert await store.rollup_job_and_dataset(first.job_id, ds.dataset_id) == {first.job_id: "complete"}
    assert (await store.get_dataset(ds.dataset_id)).status == "processing"  # type: ignore[union-attr]
    await store.bulk_task_status("complete", task_ids=[t.task_id for t in second.tasks], force=True)
    assert await store.rollup_job_and_dataset(second.job_id, ds.dataset_id) == {second.job_id: "complete"}
    assert (await store.get_dataset(ds.dataset_id)).status == "complete"  # type: ignore[union-attr]


async def test_truncated_errors_and_always_active(store: Store) -> None:
    ds, jobs = await _dataset(store, jobs=2, submitted=10)
    await store.bulk_task_status("complete", task_ids=[t.task_id for t in jobs[0].tasks], force=True)
    await store.bulk_task_status("failed", task_ids=[jobs[1].tasks[0].task_id], force=True)
    await store.bulk_task_status("complete", task_ids=[jobs[1].tasks[1].task_id], force=True)
    await store.rollup_jobs([j.job_id for j in jobs])
    assert await store.rollup_dataset(ds.dataset_id) is None  # not all materialized
    await store.truncate_dataset(ds.dataset_id)
    assert await store.rollup_dataset(ds.dataset_id) == "errors"
    active, a_jobs = await _dataset(store, jobs=1, always_active=True)
    await store.bulk_task_status("complete", task_ids=[t.task_id for t in a_jobs[0].tasks], force=True)
    await store.rollup_jobs([a_jobs[0].job_id])
    assert await store.rollup_dataset(active.dataset_id) is None
    held, h_jobs = await _dataset(store, jobs=1)
    await store.set_dataset_status(held.dataset_id, "suspended")
    await store.bulk_task_status("complete", task_ids=[t.task_id for t in h_jobs[0].tasks], force=True)
    await store.rollup_jobs([h_jobs[0].job_id])
    assert await store.rollup_dataset(held.dataset_id) is None  # a user's suspend is not undone
    assert await store.rollup_dataset("missing") is None
