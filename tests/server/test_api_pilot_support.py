"""Shared set-up for the pilot-side API tests: datasets made straight in the
store (the user API is tested elsewhere) and a pilot speaking HTTP."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rest_tools.client import RestClient

from server.auth import default_rights
from server.store import Dataset, NewDataset, NewJob, NewTask, Store

CONFIG: dict[str, Any] = {
    "version": 3.2,
    "tasks": [{"name": "generate", "trays": [{"modules": [{"src": "gen.py", "args": "--seed $(job)"}]}]}],
}
PILOT_RESOURCES = {"cpu": 4, "gpu": 0, "memory": 8.0, "disk": 20.0, "time": 24.0}


@dataclass
class Made:
    dataset: Dataset
    task_ids: list[str]
    version: int


async def make_dataset(store: Store, requirements: Sequence[dict[str, Any]] = ({},), *, jobs: int = 1,
                       owner: str = "alice", group: str = "users", queue: bool = True) -> Made:
    """A dataset of ``jobs`` jobs with one task per requirements entry, queued."""
    dataset = await store.create_dataset(NewDataset(description="test", jobs_submitted=jobs,
                                                    tasks_per_job=len(requirements), group=group, username=owner))
    await store.set_dataset_rights(dataset.dataset_id, default_rights(owner, group))
    version = await store.add_config_version(dataset.dataset_id, CONFIG, owner)
    new_jobs = [NewJob(job_index=j, tasks=[NewTask(name=f"t{i}", task_index=i, requirements=dict(req))
                                           for i, req in enumerate(requirements)]) for j in range(jobs)]
    await store.create_jobs(dataset.dataset_id, new_jobs, config_version=version)
    task_ids = [t.task_id for job in new_jobs for t in job.tasks]
    if queue:
        await store.release_dependencies(dataset_id=dataset.dataset_id)
        await store.queue_tasks(10_000, dataset_id=dataset.dataset_id)
    return Made(dataset, task_ids, version)


async def register(rc: RestClient, resources: dict[str, Any] | None = None, **extra: Any) -> str:
    body = {"resources": resources or PILOT_RESOURCES, "site": "test-site", "hostname": "node1", **extra}
    return (await rc.request("POST", "/pilots", body))["result"]


async def claim(rc: RestClient, pilot_id: str, resources: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body = {"pilot_id": pilot_id, "resources": resources or PILOT_RESOURCES, "site": "test-site", **extra}
    return await rc.request("POST", "/task_actions/process", body)
