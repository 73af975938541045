"""Contract: bulk create, jobs, tasks, guarded and bulk status, requirements."""
from __future__ import annotations

import pytest

from server.store import (
    ConflictError, InvalidArgumentError, InvalidQuery, JobFilter, ListOptions, NewJob, NewTask, NotFoundError,
    Store, TaskFilter,
)

from server.store.rules import task_priority_from, task_priority_offset

from .helpers import chain_jobs, new_dataset, pilot


async def test_bulk_create_jobs_and_tasks(store: Store) -> None:
    ds = await new_dataset(store, jobs=300, tasks_per_job=3)
    jobs = chain_jobs(300, names=("gen", "sim", "filt"), requirements={"memory": 2})
    assert await store.create_jobs(ds.dataset_id, jobs, config_version=1) == 300
    assert await store.job_counts_by_status(ds.dataset_id) == {"processing": 300}
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id)) == {"idle": 900}
    assert await store.max_job_index(ds.dataset_id) == 299
    task = await store.get_task(jobs[7].tasks[1].task_id)
    assert task is not None
    assert (task.job_id, task.job_index, task.task_index, task.name) == (jobs[7].job_id, 7, 1, "sim")
    assert task.depends == [jobs[7].tasks[0].task_id] and task.requirements == {"memory": 2}
    assert task.status == "idle" and task.config_version == 1 and task.failures == 0
    assert task.resource_class == "cpu1-mem2-disk1-t1"
    job = await store.get_job(jobs[7].job_id)
    assert job and job.job_index == 7 and job.dataset_id == ds.dataset_id
    assert await store.get_job("missing") is None and await store.get_task("missing") is None


async def test_bulk_create_is_idempotent(store: Store) -> None:
    ds = await new_dataset(store, jobs=5)
    jobs = chain_jobs(5)
    assert await store.create_jobs(ds.dataset_id, jobs[:3]) == 3
    assert await store.create_jobs(ds.dataset_id, jobs) == 2  # the first three are skipped whole
    again = chain_jobs(5)  # same job indexes, new ids: still skipped
    assert await store.create_jobs(ds.dataset_id, again) == 0
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id)) == {"idle": 10}


async def test_bulk_create_refuses_bad_input(store: Store) -> None:
    ds = await new_dataset(store)
    with pytest.raises(NotFoundError):
        await store.create_jobs("missing", chain_jobs(1))
    with pytest.raises(InvalidArgumentError, match="twice"):
        await store.create_jobs(ds.dataset_id, chain_jobs(1) + chain_jobs(1))
    with pytest.raises(InvalidArgumentError, match="processing"):
        await store.create_jobs(ds.dataset_id, [NewJob(0, [NewTask("a", 0, status="processing")])])
    with pytest.raises(InvalidArgumentError, match="requirements"):
        await store.create_jobs(ds.dataset_id, [NewJob(0, [NewTask("a", 0, {"memory": "lots"})])])
    first = chain_jobs(1)
    await store.create_jobs(ds.dataset_id, first)
    clash = NewJob(1, [NewTask("a", 0, task_id=first[0].tasks[0].task_id)])
    with pytest.raises(ConflictError):
        await store.create_jobs(ds.dataset_id, [clash])
    # nothing of a refused create is stored
    assert await store.job_counts_by_status(ds.dataset_id) == {"processing": 1}
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id)) == {"idle": 2}


async def test_job_queries_and_guarded_status(store: Store) -> None:
    ds = await new_dataset(store, jobs=4)
    jobs = chain_jobs(4)
    await store.create_jobs(ds.dataset_id, jobs)
    ids = [j.job_id for j in jobs]
    assert await store.set_job_status(ids[0], "suspended")
    assert not await store.set_job_status(ids[0], "suspended")
    assert not await store.set_job_status(ids[0], "errors")  # suspended -> errors not allowed
    assert not await store.set_job_status("missing", "suspended")
    page = await store.list_jobs(JobFilter(dataset_id=ds.dataset_id, status=["processing"]))
    assert [r["job_id"] for r in page.rows] == ids[1:]
    page = await store.list_jobs(JobFilter(dataset_id=ds.dataset_id, job_index=2), ListOptions(keys=["status"]))
    assert page.rows == [{"job_id": ids[2], "status": "processing"}]
    assert await store.job_status_summary(ds.dataset_id) == {"suspended": [ids[0]], "processing": ids[1:]}
    # bulk: reset = processing from allowed previous statuses only
    assert await store.bulk_job_status(ds.dataset_id, "suspended", ids[1:3]) == 2
    assert await store.bulk_job_status(ds.dataset_id, "processing") == 3
    assert await store.set_job_status(ids[3], "complete")
    assert await store.bulk_job_status(ds.dataset_id, "processing") == 0  # complete is final
    assert await store.bulk_job_status(ds.dataset_id, "processing", force=True) == 1  # hard reset
    assert await store.job_counts_by_status(ds.dataset_id) == {"processing": 4}
    with pytest.raises(InvalidQuery):
        await store.list_jobs(JobFilter(status=["bogus"]))


async def test_task_filters_keys_and_counts(store: Store) -> None:
    ds = await new_dataset(store, jobs=3, tasks_per_job=2)
    jobs = chain_jobs(3, names=("cpu", "gpu"), chain=False)
    for job in jobs:
        job.tasks[1].requirements = {"gpu": 1}
    await store.create_jobs(ds.dataset_id, jobs)
    f = TaskFilter(dataset_id=ds.dataset_id)
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id, gpu=True)) == {"idle": 3}
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id, gpu=False)) == {"idle": 3}
    page = await store.list_tasks(TaskFilter(dataset_id=ds.dataset_id, name=["gpu"]),
                                  ListOptions(keys=["name", "requirements.gpu", "nothing.here"]))
    assert page.rows == [{"task_id": j.tasks[1].task_id, "name": "gpu", "requirements": {"gpu": 1}} for j in jobs]
    page = await store.list_tasks(TaskFilter(dataset_id=ds.dataset_id, job_index=1))
    assert {r["task_id"] for r in page.rows} == {t.task_id for t in jobs[1].tasks}
    page = await store.list_tasks(TaskFilter(job_id=jobs[2].job_id), ListOptions(keys=["task_index"]))
    assert [r["task_index"] for r in page.rows] == [0, 1]
    page = await store.list_tasks(TaskFilter(task_ids=[jobs[0].tasks[0].task_id]))
    assert page.rows[0]["status"] == "idle" and page.next_cursor is None
    assert await store.task_counts_by_name_status(ds.dataset_id) == {"cpu": {"idle": 3}, "gpu": {"idle": 3}}
    assert list(await store.task_counts_by_name_status(ds.dataset_id)) == ["cpu", "gpu"]
    summary = await store.task_status_summary(ds.dataset_id)
    assert sorted(summary["idle"]) == sorted(t.task_id for j in jobs for t in j.tasks)
    assert (await store.task_counts_by_status(f)) == {"idle": 6}
    with pytest.raises(InvalidQuery, match="unknown task status"):
        await store.task_counts_by_status(TaskFilter(status=["running"]))


async def test_guarded_task_status(store: Store) -> None:
    ds = await new_dataset(store, jobs=1)
    jobs = chain_jobs(1)
    await store.create_jobs(ds.dataset_id, jobs)
    tid = jobs[0].tasks[0].task_id
    assert await store.set_task_status(tid, "waiting")
    assert not await store.set_task_status(tid, "waiting")  # unchanged
    assert not await store.set_task_status(tid, "complete")  # waiting -> complete not allowed
    assert await store.set_task_status(tid, "complete", force=True)
    assert not await store.set_task_status(tid, "idle")  # complete is final ...
    assert await store.set_task_status(tid, "idle", force=True)  # ... except by force
    assert not await store.set_task_status("missing", "waiting")
    with pytest.raises(InvalidArgumentError, match="claim"):
        await store.set_task_status(tid, "processing", force=True)
    with pytest.raises(InvalidArgumentError):
        await store.set_task_status(tid, "bogus")


async def test_bulk_task_status_suspend_reset_hard_reset(store: Store) -> None:
    ds = await new_dataset(store, jobs=3)
    jobs = chain_jobs(3, chain=False)
    await store.create_jobs(ds.dataset_id, jobs)
    all_ids = [t.task_id for j in jobs for t in j.tasks]
    assert await store.bulk_task_status("complete", task_ids=all_ids[:1], force=True) == 1
    assert await store.bulk_task_status("suspended", dataset_id=ds.dataset_id) == 5  # complete stays
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id)) == {"suspended": 5,
                                                                                        "complete": 1}
    assert await store.bulk_task_status("idle", job_ids=[jobs[1].job_id]) == 2  # reset of one job
    assert await store.bulk_task_status("idle", dataset_id=ds.dataset_id, reset_failures=True,
                                        force=True) == 6  # hard reset touches every task
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id)) == {"idle": 6}
    with pytest.raises(InvalidArgumentError, match="needs"):
        await store.bulk_task_status("idle")


async def test_requirements_patch_and_replace(store: Store) -> None:
    ds = await new_dataset(store, jobs=2)
    jobs = chain_jobs(2, requirements={"memory": 4, "os": ["el7"]})
    await store.create_jobs(ds.dataset_id, jobs)
    assert await store.update_requirements(ds.dataset_id, "a", {"memory": 2, "gpu": 1}) == 2
    t = await store.get_task(jobs[0].tasks[0].task_id)
    assert t and t.requirements == {"memory": 2, "gpu": 1, "os": ["el7"]} and "gpu1" in t.resource_class
    # replace: numbers never go down, missing keys are removed
    assert await store.update_requirements(ds.dataset_id, "b", {"memory": 3, "time": 2}, replace=True) == 2
    t = await store.get_task(jobs[1].tasks[1].task_id)
    assert t and t.requirements == {"memory": 4, "time": 2}
    assert await store.update_requirements(ds.dataset_id, "zzz", {"memory": 3}) == 0


async def test_set_priorities_and_task_stats(store: Store) -> None:
    ds = await new_dataset(store, jobs=2)
    jobs = chain_jobs(2, chain=False)
    await store.create_jobs(ds.dataset_id, jobs)
    ids = [t.task_id for j in jobs for t in j.tasks]
    assert await store.set_priorities([(ids[0], 0.9), (ids[1], 0.1), (ids[2], 0.3), (ids[3], 0.2),
                                       ("missing", 1.0)]) == 4
    page = await store.list_tasks(TaskFilter(dataset_id=ds.dataset_id), ListOptions(sort=[("priority", -1)],
                                                                                    keys=["priority"]))
    assert page.rows[0] == {"task_id": ids[0], "priority": 0.9}
    assert [r["task_id"] for r in page.rows] == [ids[0], ids[2], ids[3], ids[1]]
    assert await store.task_stats_by_name(ds.dataset_id) == {}


async def test_priority_of_tasks_not_queued_follows_the_dataset_base(store: Store) -> None:
    """Task priority = clamp(dataset base + per-task offset): one call moves a
    whole dataset's waiting tasks; queueing writes the value into the task."""
    ds = await new_dataset(store, jobs=200, tasks_per_job=2)
    jobs = chain_jobs(200, chain=False, status="waiting")
    await store.create_jobs(ds.dataset_id, jobs)

    def expected(base: float, job_index: int, task_index: int) -> float:
        return task_priority_from(base, task_priority_offset(job_index, task_index, 2, 200))

    late = jobs[150].tasks[0].task_id  # past the first-100-jobs boost: not clamped
    assert (await store.get_task(late)).priority == pytest.approx(expected(0.0, 150, 0))  # type: ignore[union-attr]
    assert await store.set_priority_bases({ds.dataset_id: 0.4}) == 1
    assert await store.set_priority_bases({ds.dataset_id: 0.4}) == 0  # unchanged: nothing written
    assert (await store.get_task(late)).priority == pytest.approx(expected(0.4, 150, 0))  # type: ignore[union-attr]
    taken = await store.queue_tasks(3)
    # the first jobs' boost clamps them to 1; among equal priorities the higher offset goes first
    assert taken == [jobs[0].tasks[1].task_id, jobs[1].tasks[1].task_id, jobs[2].tasks[1].task_id]
    queued = await store.get_task(taken[0])
    assert queued is not None and queued.status == "queued" and queued.priority == 1.0
    # queued tasks are re-priced with the base; a pilot still gets the best one
    assert await store.set_priority_bases({ds.dataset_id: 0.0}) == 1
    claimed = await store.claim(pilot())
    assert claimed is not None and claimed.task.task_id == taken[0]
    assert (await store.get_task(late)).priority == pytest.approx(expected(0.0, 150, 0))  # type: ignore[union-attr]
    # more jobs submitted: the job_index term of the tasks not queued yet follows
    await store.set_jobs_submitted(ds.dataset_id, 400)
    got = (await store.get_task(late)).priority  # type: ignore[union-attr]
    assert got == pytest.approx(task_priority_from(0.0, task_priority_offset(150, 0, 2, 400)))
