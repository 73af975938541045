"""Small builders shared by the store contract tests."""
from __future__ import annotations

from typing import Any, Sequence

from common.resources import Resources
from server.store import ClaimRequest, Dataset, NewDataset, NewJob, NewTask, Store


def free(cpu: int = 1, gpu: int = 0, memory: float = 4.0, disk: float = 10.0, time: float = 10.0) -> Resources:
    return Resources(cpu=cpu, gpu=gpu, memory=memory, disk=disk, time=time)


def pilot(pilot_id: str = "pilot-1", *, site: str = "", os: Sequence[str] = (), lease: float = 600.0,
          **resources: Any) -> ClaimRequest:
    return ClaimRequest(pilot_id, free(**resources), os=list(os), site=site, lease_seconds=lease, host="node1")


async def new_dataset(store: Store, jobs: int = 2, tasks_per_job: int = 2, *, group: str = "simprod",
                      username: str = "alice", **kw: Any) -> Dataset:
    return await store.create_dataset(NewDataset(description="test dataset", jobs_submitted=jobs,
                                                 tasks_per_job=tasks_per_job, group=group, username=username, **kw))


def chain_jobs(n_jobs: int, names: Sequence[str] = ("a", "b"), *, requirements: dict[str, Any] | None = None,
               status: str = "idle", first_index: int = 0, chain: bool = True,
               priority: float = 0.0) -> list[NewJob]:
    """Jobs whose tasks depend on the previous task of the same job (when ``chain``)."""
    jobs = []
    for j in range(first_index, first_index + n_jobs):
        tasks: list[NewTask] = []
        for i, name in enumerate(names):
            depends = [tasks[-1].task_id] if chain and tasks else []
            tasks.append(NewTask(name, i, dict(requirements or {}), depends=depends, status=status,
                                 priority=priority))
        jobs.append(NewJob(j, tasks))
    return jobs


async def queued_dataset(store: Store, n_tasks: int, *, requirements: dict[str, Any] | None = None,
                         priority: float = 0.0, jobs: int | None = None) -> tuple[Dataset, list[NewJob]]:
    """A dataset of single-task jobs, all queued."""
    ds = await new_dataset(store, jobs=jobs or n_tasks, tasks_per_job=1)
    job_list = chain_jobs(n_tasks, names=("only",), requirements=requirements, status="queued",
                          priority=priority)
    await store.create_jobs(ds.dataset_id, job_list)
    return ds, job_list
