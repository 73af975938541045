"""Status changes asked for by users and admins through the REST API, each
followed at once by the roll-up of what it touched (DESIGN §3.4).

IceProd's rule after a guarded update (state machine enforced): changed or
already there → fine; missing → ``<What> not found``; otherwise ``Bad state
transition for status``. The forced variants (admin routes, hard resets)
skip the state machine; after them the roll-up reopens what they reopened.
"""
from __future__ import annotations

from typing import Sequence

from server.scheduling.rollup import roll_up
from server.store import InvalidArgumentError, Job, ListOptions, NotFoundError, Store, Task, TaskFilter

CHUNK = 5000


def guarded_result(changed: bool, current_status: str | None, wanted: str, what: str) -> None:
    if changed:
        return
    if current_status is None:
        raise NotFoundError(f"{what} not found")
    if current_status != wanted:
        raise InvalidArgumentError("Bad state transition for status")


async def task_of_dataset(store: Store, dataset_id: str, task_id: str) -> Task:
    task = await store.get_task(task_id)
    if task is None or task.dataset_id != dataset_id:
        raise NotFoundError("Task not found")
    return task


async def job_of_dataset(store: Store, dataset_id: str, job_id: str) -> Job:
    job = await store.get_job(job_id)
    if job is None or job.dataset_id != dataset_id:
        raise NotFoundError("Job not found")
    return job


async def any_task_exists(store: Store, task_ids: list[str], dataset_id: str | None = None) -> bool:
    """IceProd's "Tasks not found" means none of them exists; tasks already in
    the target status changed nothing but are not missing."""
    page = await store.list_tasks(TaskFilter(dataset_id=dataset_id, task_ids=task_ids),
                                  ListOptions(keys=("task_id",), limit=1))
    return bool(page.rows)


async def _jobs_of_tasks(store: Store, task_ids: Sequence[str], dataset_id: str | None = None) -> dict[str, set[str]]:
    """{dataset_id: job ids} of tasks known only by id."""
    jobs: dict[str, set[str]] = {}
    for start in range(0, len(task_ids), CHUNK):
        # by id alone, the dataset checked on the rows: with it in the query,
        # SQLite walks a large dataset's index to keep creation order
        page = await store.list_tasks(TaskFilter(task_ids=list(task_ids[start:start + CHUNK])),
                                      ListOptions(keys=("job_id", "dataset_id")))
        for row in page.rows:
            if dataset_id is None or row["dataset_id"] == dataset_id:
                jobs.setdefault(row["dataset_id"], set()).add(row["job_id"])
    return jobs


# ---------------------------------------------------------------- tasks

async def set_task_status(store: Store, task_id: str, status: str, *, dataset_id: str | None = None,
                          instance_id: str | None = None) -> None:
    """A task's status by the state machine (``instance_id``, when given, must
    match); ``dataset_id``: the task must belong to that dataset."""
    if dataset_id is not None:
        await task_of_dataset(store, dataset_id, task_id)
    changed = await store.set_task_status(task_id, status, instance_id=instance_id)
    task = await store.get_task(task_id)
    if task is not None and dataset_id is not None and task.dataset_id != dataset_id:
        task = None
    guarded_result(changed, task.status if task else None, status, "Task")
    if changed and task is not None:
        await roll_up(store, task.dataset_id, [task.job_id])


async def patch_task(store: Store, task_id: str, *, priority: float | None, status: str | None) -> Task | None:
    """Admin: priority and/or status without the state machine; the task after."""
    task = await store.get_task(task_id)
    if task is None:
        raise NotFoundError("Task not found")
    if priority is not None:
        await store.set_priorities([(task_id, priority)])
    if status is not None:
        await store.set_task_status(task_id, status, force=True)
        await roll_up(store, task.dataset_id, [task.job_id], reopen=status != "complete")
    return await store.get_task(task_id)


async def force_tasks(store: Store, status: str, task_ids: list[str], *, dataset_id: str | None = None) -> None:
    """Set the listed tasks' status without the state machine (of one dataset,
    or of any with ``dataset_id`` None); "Tasks not found" when none exists."""
    changed = await store.bulk_task_status(status, dataset_id=dataset_id, task_ids=task_ids, force=True)
    if not changed and not await any_task_exists(store, task_ids, dataset_id):
        raise NotFoundError("Tasks not found")
    for found_dataset, job_ids in (await _jobs_of_tasks(store, task_ids, dataset_id)).items():
        await roll_up(store, found_dataset, sorted(job_ids), reopen=status != "complete")


async def bulk_tasks(store: Store, dataset_id: str, status: str, *, job_ids: list[str] | None,
                     task_ids: list[str] | None, force: bool = False, reset_failures: bool = False) -> int:
    """Suspend / reset / hard-reset the selected tasks of a dataset (all of them
    when neither jobs nor tasks are named); how many changed."""
    if job_ids is not None and task_ids is not None:
        raise InvalidArgumentError("give either 'jobs' or 'tasks', not both")
    changed = await store.bulk_task_status(status, dataset_id=dataset_id, job_ids=job_ids, task_ids=task_ids,
                                           force=force, reset_failures=reset_failures)
    touched: list[str] | None = job_ids
    if task_ids is not None:
        touched = sorted((await _jobs_of_tasks(store, task_ids, dataset_id)).get(dataset_id, set()))
    await roll_up(store, dataset_id, touched, reopen=force)
    return changed


# ---------------------------------------------------------------- jobs

async def set_job_status(store: Store, dataset_id: str, job_id: str, status: str) -> None:
    """A job's status by the state machine, then its dataset's roll-up."""
    job = await job_of_dataset(store, dataset_id, job_id)
    changed = await store.set_job_status(job.job_id, status)
    if not changed:
        job = await job_of_dataset(store, dataset_id, job.job_id)
    guarded_result(changed, job.status, status, "Job")
    await store.rollup_dataset(dataset_id)


async def force_job(store: Store, job_id: str, status: str) -> Job:
    """Admin: a job's status without the state machine; the job after."""
    await store.set_job_status(job_id, status, force=True)
    job = await store.get_job(job_id)
    if job is None:
        raise NotFoundError("Job not found")
    await store.rollup_dataset(job.dataset_id)
    return job


async def bulk_jobs(store: Store, dataset_id: str, status: str, job_ids: list[str] | None, *,
                    force: bool = False, must_change: bool = False) -> None:
    """The listed jobs (all with None) to ``status``; ``must_change``: "Jobs
    not found" when none moved."""
    if not await store.bulk_job_status(dataset_id, status, job_ids, force=force) and must_change:
        raise NotFoundError("Jobs not found")
    await store.rollup_dataset(dataset_id)


# ---------------------------------------------------------------- datasets

async def set_dataset_status(store: Store, dataset_id: str, status: str) -> None:
    changed = await store.set_dataset_status(dataset_id, status)
    current = None if changed else await store.get_dataset(dataset_id)
    guarded_result(changed, current.status if current else None, status, "Dataset")


async def hard_reset_dataset(store: Store, dataset_id: str) -> None:
    """Processing again whatever its status (its jobs and tasks untouched)."""
    if not await store.set_dataset_status(dataset_id, "processing", force=True):
        if await store.get_dataset(dataset_id) is None:
            raise NotFoundError("Dataset not found")
