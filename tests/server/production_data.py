"""A dataset with a history, for the production tests (REST, CLI, website):
ten one-task jobs ("gen", 2 cores, 4 GB) run by real claims and reports on
the store — jobs 0-3 fail on SiteA/bad1 (memory), 4-5 on SiteB/n2
(transfer), 6-9 complete on SiteB using 1.3 GB for an hour."""
from __future__ import annotations

from dataclasses import dataclass

from common.resources import Resources
from server.store import AttemptResult, ClaimRequest, FailureClass, Store
from tests.server.test_api_pilot_support import make_dataset


@dataclass
class History:
    dataset_id: str
    number: int
    task_ids: list[str]
    """By job index."""


def _plan(index: int) -> AttemptResult:
    if index < 4:
        return AttemptResult(time_used=1800, site="SiteA", host="bad1", kind="memory", rule="oom",
                                              failure_class=FailureClass.PHYSICS, reason="killed: out of memory")
    if index < 6:
        return AttemptResult(time_used=1800, site="SiteB", host="n2", kind="transfer",
                                            rule="stage-out", failure_class=FailureClass.PHYSICS,
                                            reason="upload refused")
    return AttemptResult(time_used=3600, site="SiteB", host="n3",
                                        resources={"memory": 1.3, "disk": 0.5, "time": 1.0})


async def production_history(store: Store, *, owner: str = "alice", group: str = "users") -> History:
    made = await make_dataset(store, [{"cpu": 2, "memory": 4, "disk": 2, "time": 2}], jobs=10, owner=owner,
                              group=group)
    by_index: dict[int, str] = {}
    free = Resources(cpu=8, gpu=0, memory=32, disk=100, time=10)
    while (got := await store.claim(ClaimRequest("pilot-1", free, host="claimed-on"))) is not None:
        result = _plan(got.task.job_index)
        by_index[got.task.job_index] = got.task.task_id
        if result.failure_class is None:
            await store.complete(got.task.task_id, got.instance_id, result)
        else:
            await store.fail(got.task.task_id, got.instance_id, result)
    return History(made.dataset.dataset_id, made.dataset.dataset, [by_index[i] for i in range(10)])
