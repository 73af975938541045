"""Each background loop's round on a real SQLite store: materialize, release,
queue (priorities and fairness), reap (leases and lost pilots), roll-up with
scratch cleanup, and old action messages."""
from __future__ import annotations

import json
import pathlib
import time
from typing import AsyncIterator

import pytest
from common.resources import Resources
from server.metrics import ServerMetrics
from server.scheduling.loops import Scheduler
from server.scheduling.priority import task_priority
from server.scheduling.service import loop_specs
from server.settings import Settings
from server.store import (
    AttemptResult, ClaimRequest, JobFilter, NewDataset, NewPilot, ScratchFile, Store, TaskFilter, open_store,
)

DEMO = json.loads((pathlib.Path(__file__).parents[2] / "examples" / "local-demo.json").read_text())


@pytest.fixture
async def sched(tmp_path: pathlib.Path) -> AsyncIterator[Scheduler]:
    settings = Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), provider="none",
                        materialize_batch=3, queue_target=1000, queue_batch=1000, heartbeat_seconds=60)
    store = await open_store(settings.db)
    woken: list[str] = []
    scheduler = Scheduler(store, settings, woken.append, ServerMetrics())
    scheduler.woken = woken  # type: ignore[attr-defined]
    try:
        yield scheduler
    finally:
        await store.close()


async def make_dataset(store: Store, jobs: int = 5, *, username: str = "alice", group: str = "users",
                       priority: float = 0.5) -> str:
    ds = await store.create_dataset(NewDataset(description="t", jobs_submitted=jobs, tasks_per_job=2,
                                               group=group, username=username, priority=priority))
    await store.add_config_version(ds.dataset_id, DEMO, username)
    return ds.dataset_id


async def fill(s: Scheduler) -> None:
    while await s.materialize():
        pass
    await s.release()
    await s.queue()


def pilot_free() -> Resources:
    return Resources(cpu=8, gpu=0, memory=16.0, disk=100.0, time=24.0)


async def test_materialize_in_batches_then_stops(sched: Scheduler) -> None:
    dataset_id = await make_dataset(sched.store, jobs=5)
    assert await sched.materialize() is True  # a full batch of 3: go again
    assert await sched.store.max_job_index(dataset_id) == 2
    assert "release" in sched.woken  # type: ignore[attr-defined]
    assert await sched.materialize() is False
    assert await sched.store.max_job_index(dataset_id) == 4
    assert await sched.materialize() is False  # all jobs exist
    assert await sched.store.task_counts_by_status(TaskFilter(dataset_id=dataset_id)) == {"idle": 10}


async def test_materialize_respects_truncated_and_bad_configs(sched: Scheduler) -> None:
    truncated = await make_dataset(sched.store, jobs=5)
    await sched.store.truncate_dataset(truncated)
    broken = await make_dataset(sched.store, jobs=5)
    await sched.store.add_config_version(broken, {**DEMO, "tasks": DEMO["tasks"][:1]}, "alice")  # 1 task, not 2
    good = await make_dataset(sched.store, jobs=2)
    assert await sched.materialize() is False
    assert await sched.store.max_job_index(truncated) == -1
    assert await sched.store.max_job_index(broken) == -1
    assert await sched.store.max_job_index(good) == 1  # the broken dataset did not stop the others


async def test_release_and_queue_with_iceprod_task_priorities(sched: Scheduler) -> None:
    dataset_id = await make_dataset(sched.store, jobs=4)
    await sched.materialize()
    await sched.materialize()
    assert await sched.release() is False
    assert "queue" in sched.woken  # type: ignore[attr-defined]
    sched.settings.queue_target = 3
    await sched.queue()
    counts = await sched.store.task_counts_by_status(TaskFilter(dataset_id=dataset_id))
    assert counts == {"queued": 3, "waiting": 1, "idle": 4}  # only the first task of each job is released
    page = await sched.store.list_tasks(TaskFilter(dataset_id=dataset_id, status=["waiting", "queued"]))
    dataset_prio = sched.priority_bases[dataset_id]
    # one processing dataset, user priority 0.5, group users (0.8), 4 jobs:
    # 1 * sqrt(0.5) * 0.8 - (8/8)/4 = 0.3157
    assert dataset_prio == pytest.approx(0.5 ** 0.5 * 0.8 - 0.25)
    for row in page.rows:
        assert row["priority"] == pytest.approx(task_priority(
            dataset_prio, task_index=row["task_index"], job_index=row["job_index"], tasks_per_job=2,
            jobs_submitted=4))


async def test_a_dataset_priority_change_writes_no_task(sched: Scheduler, monkeypatch) -> None:
    """Priorities move per dataset (base + stored offset): a round reads no
    task listing and writes one value per dataset whose priority moved."""
    dataset_id = await make_dataset(sched.store, jobs=3)
    await sched.materialize()
    await sched.release()
    sched.settings.queue_target = 0  # nothing queued: look at waiting priorities only
    listed: list[object] = []
    bases: list[dict[str, float]] = []
    list_tasks, set_bases = sched.store.list_tasks, sched.store.set_priority_bases

    async def counting_list(*args, **kwargs):
        listed.append(args)
        return await list_tasks(*args, **kwargs)

    async def counting_bases(values):
        bases.append(dict(values))
        return await set_bases(values)
    monkeypatch.setattr(sched.store, "list_tasks", counting_list)
    monkeypatch.setattr(sched.store, "set_priority_bases", counting_bases)
    await sched.queue()
    assert listed == [] and len(bases) == 1
    page = await list_tasks(TaskFilter(dataset_id=dataset_id, status=["waiting"]))
    before = {row["task_id"]: row["priority"] for row in page.rows}
    assert len(before) == 3 and all(p > 0 for p in before.values())
    await sched.queue()
    assert len(bases) == 1  # nothing moved: nothing written
    # the owner lowers the dataset priority: one base, every waiting task follows
    await sched.store.create_dataset(NewDataset(description="other", jobs_submitted=1, tasks_per_job=1,
                                                group="users", username="alice", priority=1.0))
    await sched.queue()
    assert listed == [] and len(bases) == 2 and dataset_id in bases[1]
    after = {row["task_id"]: row["priority"] for row in (await list_tasks(
        TaskFilter(dataset_id=dataset_id, status=["waiting"]))).rows}
    base = sched.priority_bases[dataset_id]
    for row in page.rows:
        assert after[row["task_id"]] == pytest.approx(task_priority(
            base, task_index=row["task_index"], job_index=row["job_index"], tasks_per_job=2, jobs_submitted=3))


async def test_queue_puts_loaded_datasets_last(sched: Scheduler) -> None:
    busy = await make_dataset(sched.store, jobs=3, priority=1.0)
    await fill(sched)  # busy's 3 first tasks are queued
    fresh = await make_dataset(sched.store, jobs=3, username="bob", priority=1.0)
    more = await make_dataset(sched.store, jobs=3, priority=1.0)
    while await sched.materialize():
        pass
    await sched.release()
    sched.settings.queue_target = 3 + 3  # room for three more
    await sched.queue()
    queued = {d: (await sched.store.task_counts_by_status(TaskFilter(dataset_id=d))).get("queued", 0)
              for d in (busy, fresh, more)}
    assert queued[busy] == 3
    assert queued[fresh] + queued[more] == 3


async def test_reap_expired_lease_returns_task_as_infra_failure(sched: Scheduler) -> None:
    dataset_id = await make_dataset(sched.store, jobs=1)
    await fill(sched)
    pilot_id = await sched.store.register_pilot(NewPilot(resources={"cpu": 8}))
    claimed = await sched.store.claim(ClaimRequest(pilot_id=pilot_id, free=pilot_free(), lease_seconds=0.01))
    assert claimed is not None
    time.sleep(0.05)
    await sched.reap()
    task = await sched.store.get_task(claimed.task.task_id)
    assert task.status == "waiting" and task.failures_infra == 1 and task.failures_nonphysics == 0
    assert "queue" in sched.woken and claimed.task.job_id in sched.dirty_jobs  # type: ignore[attr-defined]
    late = await sched.store.complete(task.task_id, claimed.instance_id, AttemptResult(time_used=1))
    assert not late.applied  # the lost pilot's report is fenced
    assert dataset_id in sched.dirty_datasets


async def test_reap_lost_pilot_gives_its_tasks_back_at_once(sched: Scheduler) -> None:
    await make_dataset(sched.store, jobs=1)
    await fill(sched)
    pilot_id = await sched.store.register_pilot(NewPilot(resources={"cpu": 8}))
    claimed = await sched.store.claim(ClaimRequest(pilot_id=pilot_id, free=pilot_free(), lease_seconds=600))
    await sched.store.pilot_heartbeat(pilot_id, None, [claimed.task.task_id])
    sched.settings.heartbeat_seconds = 0.01
    time.sleep(0.05)
    await sched.reap()
    assert (await sched.store.get_pilot(pilot_id)).state == "lost"
    task = await sched.store.get_task(claimed.task.task_id)
    assert task.status == "waiting" and task.failures_infra == 1


async def test_rollup_completes_jobs_and_dataset_and_removes_scratch(sched: Scheduler, tmp_path) -> None:
    dataset_id = await make_dataset(sched.store, jobs=1)
    root = pathlib.Path(sched.settings.data_dir) / "scratch"
    job_file = root / dataset_id / "0" / "gen_0.txt"
    job_file.parent.mkdir(parents=True)
    job_file.write_text("x")
    await sched.store.add_scratch_file(ScratchFile(dataset_id=dataset_id, path=f"{dataset_id}/0/gen_0.txt",
                                                   size=1, sha512="0" * 128, job_index=0))
    pilot_id = await sched.store.register_pilot(NewPilot(resources={"cpu": 8}))
    for _ in range(2):  # the two tasks of the job, one after the other
        await fill(sched)
        claimed = await sched.store.claim(ClaimRequest(pilot_id=pilot_id, free=pilot_free()))
        outcome = await sched.store.complete(claimed.task.task_id, claimed.instance_id, AttemptResult(time_used=1))
        assert outcome.applied
    # no roll-up happened on the report path here (as after a crash): the loop catches it
    assert (await sched.store.get_dataset(dataset_id)).status == "processing"
    await sched.rollup()
    job = (await sched.store.list_jobs(JobFilter(dataset_id=dataset_id))).rows[0]
    assert job["status"] == "complete"
    assert (await sched.store.get_dataset(dataset_id)).status == "complete"
    assert not job_file.exists()
    assert await sched.store.list_scratch_files(dataset_id, 0) == []


async def test_cleanup_actions_keeps_recent_messages(sched: Scheduler) -> None:
    message = await sched.store.add_action("materialization", {"dataset_id": "x"})
    worker = "w1"
    taken = await sched.store.pop_action(worker)
    await sched.store.finish_action(taken.message_id, worker, "complete")
    assert await sched.cleanup_actions() is False
    assert await sched.store.get_action(message.message_id) is not None


def test_loop_specs_in_pipeline_order(sched: Scheduler) -> None:
    names = [spec.name for spec in loop_specs(sched, 2.0)]
    assert names == ["materialize", "release", "queue", "reap", "rollup", "actions_cleanup"]
    assert loop_specs(sched, 2.0)[-1].interval == 3600.0



async def test_materialize_leaves_datasets_with_a_pending_request_to_the_action(sched: Scheduler) -> None:
    dataset_id = await make_dataset(sched.store, jobs=5)
    await sched.store.add_action("materialization", {"dataset_id": dataset_id, "num": 5}, dataset_id=dataset_id)
    assert await sched.materialize() is False
    assert await sched.store.max_job_index(dataset_id) == -1
    taken = await sched.store.pop_action("worker")
    await sched.store.finish_action(taken.message_id, "worker", "error", error_message="worker gave up")
    await sched.materialize()  # the request is over: the loop takes the dataset again
    assert await sched.store.max_job_index(dataset_id) == 2
