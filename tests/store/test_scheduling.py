"""Contract: dependency release (incl. cross-dataset) and queueing order."""
from __future__ import annotations

from server.store import AttemptResult, NewJob, NewTask, Store, TaskFilter

from .helpers import chain_jobs, new_dataset, pilot, queued_dataset


async def _run(store: Store, task_id: str) -> None:
    """Take one task through queued -> processing -> complete."""
    await store.bulk_task_status("queued", task_ids=[task_id], force=True)
    while True:
        claimed = await store.claim(pilot(cpu=64, gpu=8, memory=512, disk=1000, time=1000))
        assert claimed is not None
        if claimed.task.task_id == task_id:
            break
        await store.reset(claimed.task.task_id, claimed.instance_id, AttemptResult())
    assert (await store.complete(task_id, claimed.instance_id, AttemptResult(time_used=60))).applied


async def test_release_follows_dependencies(store: Store) -> None:
    ds = await new_dataset(store, jobs=3, tasks_per_job=3)
    jobs = chain_jobs(3, names=("a", "b", "c"))
    await store.create_jobs(ds.dataset_id, jobs)
    assert await store.release_dependencies() == 3  # the first task of every job
    assert await store.release_dependencies() == 0
    await _run(store, jobs[0].tasks[0].task_id)
    assert await store.release_dependencies() == 1
    b = await store.get_task(jobs[0].tasks[1].task_id)
    assert b and b.status == "waiting"
    c = await store.get_task(jobs[0].tasks[2].task_id)
    assert c and c.status == "idle"


async def test_release_limit_and_dataset_filter(store: Store) -> None:
    one = await new_dataset(store, jobs=5, tasks_per_job=1)
    two = await new_dataset(store, jobs=5, tasks_per_job=1)
    await store.create_jobs(one.dataset_id, chain_jobs(5, names=("x",)))
    await store.create_jobs(two.dataset_id, chain_jobs(5, names=("x",)))
    assert await store.release_dependencies(limit=2, dataset_id=two.dataset_id) == 2
    assert await store.task_counts_by_status(TaskFilter(dataset_id=one.dataset_id)) == {"idle": 5}
    assert await store.release_dependencies() == 8


async def test_cross_dataset_dependency(store: Store) -> None:
    upstream = await new_dataset(store, jobs=1, tasks_per_job=1)
    up_jobs = chain_jobs(1, names=("gen",))
    await store.create_jobs(upstream.dataset_id, up_jobs)
    up_task = up_jobs[0].tasks[0].task_id
    downstream = await new_dataset(store, jobs=1, tasks_per_job=1)
    down = NewTask("filter", 0, depends=[up_task])
    await store.create_jobs(downstream.dataset_id, [NewJob(0, [down])])
    await store.release_dependencies(dataset_id=upstream.dataset_id)
    assert await store.release_dependencies(dataset_id=downstream.dataset_id) == 0
    await _run(store, up_task)
    assert await store.release_dependencies() == 1
    assert (await store.get_task(down.task_id)).status == "waiting"  # type: ignore[union-attr]
    # a task created after its dependency completed is releasable at once
    later = NewTask("filter", 0, depends=[up_task])
    await store.create_jobs(downstream.dataset_id, [NewJob(1, [later])])
    assert await store.release_dependencies() == 1


async def test_hard_reset_of_a_dependency_blocks_dependents_again(store: Store) -> None:
    ds = await new_dataset(store, jobs=1, tasks_per_job=2)
    jobs = chain_jobs(1)
    await store.create_jobs(ds.dataset_id, jobs)
    a, b = (t.task_id for t in jobs[0].tasks)
    await store.bulk_task_status("complete", task_ids=[a], force=True)
    await store.bulk_task_status("idle", task_ids=[a], force=True, reset_failures=True)
    assert await store.release_dependencies() == 1
    assert (await store.get_task(b)).status == "idle"  # type: ignore[union-attr]


async def test_queue_in_priority_order(store: Store) -> None:
    ds = await new_dataset(store, jobs=6, tasks_per_job=1)
    jobs = chain_jobs(6, names=("x",), status="waiting")
    await store.create_jobs(ds.dataset_id, jobs)
    prios = [0.1, 0.9, 0.5, 0.9, 0.3, 0.7]
    await store.set_priorities([(j.tasks[0].task_id, p) for j, p in zip(jobs, prios)])
    ids = [j.tasks[0].task_id for j in jobs]
    taken = await store.queue_tasks(4)
    assert taken == [ids[1], ids[3], ids[5], ids[2]]  # priority desc, ties by creation order
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id)) == {"queued": 4, "waiting": 2}
    assert sum(c.queued for c in await store.queued_classes()) == 4
    assert await store.queue_tasks(10) == [ids[4], ids[0]]
    assert await store.queue_tasks(10) == []


async def test_queue_with_dataset_deprio(store: Store) -> None:
    names = []
    for _ in range(3):
        ds = await new_dataset(store, jobs=2, tasks_per_job=1)
        jobs = chain_jobs(2, names=("x",), status="waiting", priority=0.5)
        await store.create_jobs(ds.dataset_id, jobs)
        names.append((ds.dataset_id, [j.tasks[0].task_id for j in jobs]))
    (d0, t0), (d1, t1), (d2, t2) = names
    await store.set_priorities([(t1[0], 0.9), (t1[1], 0.9)])  # d1 has the best tasks
    taken = await store.queue_tasks(6, dataset_deprio=[d1, d0])  # d1 most loaded, then d0
    assert taken == t2 + t0 + t1  # non-deprio first, then deprio from the end of the list


async def test_queue_by_dataset(store: Store) -> None:
    ds, jobs = await queued_dataset(store, 2)
    other = await new_dataset(store, jobs=2, tasks_per_job=1)
    await store.create_jobs(other.dataset_id, chain_jobs(2, names=("x",), status="waiting"))
    assert await store.queue_tasks(5, dataset_id=ds.dataset_id) == []
    assert len(await store.queue_tasks(5, dataset_id=other.dataset_id)) == 2


async def test_suspended_datasets_tasks_stay_idle(store):
    """A dataset that is not processing releases nothing; once it runs again, it does."""
    from server.store import NewDataset, NewJob, NewTask
    dataset = await store.create_dataset(NewDataset(description="s", jobs_submitted=1, tasks_per_job=1,
                                                    group="users", username="u", status="suspended"))
    await store.create_jobs(dataset.dataset_id, [NewJob(job_index=0, tasks=[NewTask(name="a", task_index=0)])])
    assert await store.release_dependencies(dataset_id=dataset.dataset_id) == 0
    assert await store.release_dependencies() == 0
    assert await store.set_dataset_status(dataset.dataset_id, "processing")
    assert await store.release_dependencies() == 1
