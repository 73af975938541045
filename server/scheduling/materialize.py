"""Materialization: create a dataset's next jobs with all their tasks, in bulk.

IceProd made 1 + 2×tasks HTTP calls per job (POST /jobs, POST /tasks, PATCH
priority), so buffering was slow and a killed service left half-built jobs
(reference §6.2, §11). Here a batch of ``settings.materialize_batch`` jobs
is built in memory and handed to ``store.create_jobs`` in atomic calls of
``CREATE_CHUNK`` jobs (each job with all its tasks or not at all).

Ids are DETERMINISTIC (a 128-bit BLAKE2 hash of dataset_id/job_index[/task_index],
32 hex digits like every frazil id; uuid5 was 8x slower for 400,000 ids):
* a retried or concurrent materialization of the same job is a no-op (the
  store skips existing job ids), so no "extra jobs" (IceProd #417);
* a cross-dataset dependency ``other_dataset_id:task`` names the task of the
  same job_index in that dataset by its id even when that job has not been
  materialized yet: the store counts it as a pending dependency and releases
  the task once that id completes, whichever dataset creates it first.

``task_files`` needs nothing here, as in IceProd: the per-job files registered
with ``/datasets/{id}/files`` join the task's data when its plan is built
(``common.plan.JobContext.task_files``), i.e. when the task runs.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Iterator

from common.config.depends import read_depends, resolve_ref
from server.scheduling.backlog import budget, storage_hold
from server.scheduling.requirements import RequirementsError, TaskRequirements
from server.settings import Settings
from server.store import Dataset, InvalidArgumentError, NewJob, NewTask, NotFoundError, Store

log = logging.getLogger("frazil.materialize")

BUILD_SLICE = 1000
CREATE_CHUNK = 2000
"""Jobs per ``create_jobs`` call: each is one transaction of the store's single
writer, and a claim that arrives meanwhile waits for it; 10,000 jobs held the
writer for seconds on a loaded machine while a 1,000,000-job dataset was
materialized (issue 17: first tasks claimable within 10 s)."""
"""Jobs built between two yields to the event loop (~10 ms of CPU): a 10,000-job
batch built in one go would stall every request for a quarter second."""


_LOCKS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]" = weakref.WeakKeyDictionary()
"""One materialization per dataset at a time in this process (the action
worker and the scheduling loop may both ask): the second waits and then
builds only what is still missing instead of building the same jobs again.
Per event loop, because an asyncio lock belongs to one loop."""


class MaterializeError(InvalidArgumentError):
    """The dataset cannot be materialized as configured (bad depends, requirements, task count)."""


def job_id_for(dataset_id: str, job_index: int) -> str:
    return hashlib.blake2b(f"frazil-job/{dataset_id}/{job_index}".encode(), digest_size=16).hexdigest()


def task_id_for(dataset_id: str, job_index: int, task_index: int) -> str:
    return hashlib.blake2b(f"frazil-task/{dataset_id}/{job_index}/{task_index}".encode(), digest_size=16).hexdigest()


@dataclass
class DependencyRef:
    """One entry of a task's ``depends``: a task of the same job (``dataset_id``
    None) or the task ``task_index`` of the same job_index in another dataset."""

    task_index: int
    dataset_id: str | None = None


async def _resolve_depends(store: Store, config: dict[str, Any], dataset: Dataset,
                           task_index: int) -> list[DependencyRef]:
    """The task's ``depends``, read by the same function as the submit checks
    (``common.config.depends``); a cross-dataset entry is looked up in the
    other dataset's stored config."""
    tasks = config["tasks"]
    refs: list[DependencyRef] = []
    for dep in read_depends(tasks, task_index):
        if dep.problem:
            raise MaterializeError(f"bad depends {dep.entry!r} of task {tasks[task_index].get('name')!r}: {dep.problem}")
        if dep.task_index is not None:
            refs.append(DependencyRef(dep.task_index))
            continue
        other_id = str(dep.dataset_id)
        other = await store.get_dataset(other_id)
        other_config = await store.get_config(other_id) if other else None
        if other is None or other_config is None:
            raise MaterializeError(f"bad depends {dep.entry!r}: dataset {other_id} does not exist or has no config")
        if other.jobs_submitted < dataset.jobs_submitted:
            log.warning("dataset %s depends on %s, which has only %d jobs: later jobs wait for it to grow",
                        dataset.dataset_id, other_id, other.jobs_submitted)
        other_tasks = other_config.config.get("tasks", [])
        found = resolve_ref(other_tasks, dep.ref)
        if found is None:
            names = ", ".join(str(t.get("name")) for t in other_tasks if isinstance(t, dict))
            raise MaterializeError(f"bad depends {dep.entry!r}: dataset {other_id} has no task {dep.ref!r} "
                                   f"(tasks: {names})")
        refs.append(DependencyRef(found, other_id))
    return refs


async def _room(store: Store, settings: Settings, dataset: Dataset, num: int, requested: bool) -> int:
    """How many jobs to create now: ``num``, the jobs left and what the
    backlog limits leave (server/scheduling/backlog.py). An explicit request
    also fills a suspended dataset (IceProd's basic_submit creates it
    suspended, materializes, adds per-job files, then starts it; its tasks
    stay idle until then)."""
    runnable = {"processing", "suspended"} if requested else {"processing"}
    if dataset.truncated or dataset.status not in runnable:
        return 0
    next_index = await store.max_job_index(dataset.dataset_id) + 1
    room = min(num, dataset.jobs_submitted - next_index)
    if room <= 0:
        return 0
    left = await budget(store, settings, dataset)
    jobs = left.tasks // max(dataset.tasks_per_job, 1)
    if jobs < room:
        log.info("dataset %s: %d of %d jobs now (%s)", dataset.dataset_id, jobs, room, left.held)
    return min(room, jobs)


async def materialize(store: Store, settings: Settings, dataset_id: str, num: int,
                      *, task_status: str = "idle", requested: bool = False) -> int:
    """Create up to ``num`` next jobs of the dataset with all their tasks; return
    how many were created (0 when truncated, not processing, complete, or
    over the backlog limit). Raises :class:`MaterializeError` naming the
    problem when the config cannot be materialized."""
    lock = _LOCKS.setdefault(asyncio.get_running_loop(), {}).setdefault(dataset_id, asyncio.Lock())
    async with lock:
        return await _materialize(store, settings, dataset_id, num, task_status, requested)


async def _materialize(store: Store, settings: Settings, dataset_id: str, num: int, task_status: str,
                       requested: bool) -> int:
    dataset = await store.get_dataset(dataset_id)
    if dataset is None:
        raise NotFoundError(f"dataset {dataset_id} not found")
    todo = await _room(store, settings, dataset, num, requested)
    if todo <= 0:
        return 0
    stored = await store.get_config(dataset_id)
    if stored is None:
        raise MaterializeError(f"dataset {dataset_id} has no config")
    config = stored.config  # stored filled and checked at submit: read as is
    count = len(config.get("tasks", []))
    if count != dataset.tasks_per_job:
        raise MaterializeError(f"config has {count} tasks but the dataset has tasks_per_job={dataset.tasks_per_job}")
    try:
        resolvers = [TaskRequirements.build(config, i) for i in range(count)]
    except RequirementsError as exc:
        raise MaterializeError(str(exc)) from None
    depends = [await _resolve_depends(store, config, dataset, i) for i in range(count)]

    first = await store.max_job_index(dataset_id) + 1
    batch = max(1, settings.materialize_batch)
    created = 0
    for start in range(first, first + todo, batch):
        jobs: list[NewJob] = []
        for piece in range(start, min(first + todo, start + batch), BUILD_SLICE):
            with _gc_paused():
                jobs.extend(_build_job(dataset, resolvers, depends, index, task_status)
                            for index in range(piece, min(first + todo, start + batch, piece + BUILD_SLICE)))
            await asyncio.sleep(0)  # let claims and heartbeats through between slices
        for piece in range(0, len(jobs), CREATE_CHUNK):
            held = await storage_hold(store, settings)  # the disk or the WAL may fill while we create
            if held:
                log.warning("dataset %s: job creation stopped after %d jobs: %s", dataset_id, created, held)
                return created
            created += await store.create_jobs(dataset_id, jobs[piece:piece + CREATE_CHUNK], stored.version)
    log.info("materialized %d jobs of dataset %s", created, dataset_id)
    return created


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Building a batch allocates ~4 objects per task and nothing cyclic; the
    cyclic collector would otherwise run over them again and again (half of
    the build time). The build is synchronous, so no other coroutine runs
    while it is paused."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build_job(dataset: Dataset, resolvers: list[TaskRequirements], depends: list[list[DependencyRef]],
               job_index: int, task_status: str) -> NewJob:
    dataset_id = dataset.dataset_id
    ids = [task_id_for(dataset_id, job_index, i) for i in range(len(resolvers))]
    tasks = []
    for i, resolver in enumerate(resolvers):
        try:
            requirements = resolver.for_job(dataset=dataset.dataset, dataset_id=dataset_id, job=job_index,
                                            jobs_submitted=dataset.jobs_submitted, task_id=ids[i],
                                            debug=dataset.debug)
        except RequirementsError as exc:
            raise MaterializeError(str(exc)) from None
        deps = [ids[ref.task_index] if ref.dataset_id is None else task_id_for(ref.dataset_id, job_index, ref.task_index)
                for ref in depends[i]]
        tasks.append(NewTask(name=resolver.name, task_index=i, requirements=requirements, depends=deps,
                             status=task_status, task_id=ids[i]))
    return NewJob(job_index=job_index, tasks=tasks, job_id=job_id_for(dataset_id, job_index))
