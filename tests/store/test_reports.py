"""Contract: fenced reports, retries and budgets, escalation, leases."""
from __future__ import annotations

import asyncio

import pytest

from server.store import (
    AttemptResult, ClaimedTask, FailureClass, Outcome, OutputFile, RetryPolicy, Store, TaskFilter,
)

from .helpers import pilot, queued_dataset


async def _claimed(store: Store, requirements: dict | None = None, **resources: float) -> ClaimedTask:
    await queued_dataset(store, 1, requirements=requirements)
    got = await store.claim(pilot(**resources))
    assert got is not None
    return got


async def _requeue_and_claim(store: Store, task_id: str, **resources: float) -> ClaimedTask:
    assert await store.queue_tasks(1) == [task_id]
    got = await store.claim(pilot(**resources))
    assert got is not None and got.task.task_id == task_id
    return got


async def test_complete_is_fenced(store: Store) -> None:
    c = await _claimed(store)
    tid = c.task.task_id
    stale = await store.complete(tid, "not-the-instance", AttemptResult(time_used=7200))
    assert stale.outcome is Outcome.STALE and (await store.get_task(tid)).status == "processing"  # type: ignore
    assert (await store.complete("missing", c.instance_id, AttemptResult())).outcome is Outcome.NOT_FOUND
    result = AttemptResult(time_used=7200, site="WIPAC", host="n1", exit_codes=[0], frazil_version="1.0",
                           modules=[{"name": "gen", "argv": ["python", "gen.py"], "exit_code": 0}],
                           outputs=[OutputFile("file:///data/out.i3", 10, "ab" * 64)])
    done = await store.complete(tid, c.instance_id, result)
    assert done.applied and done.status == "complete"
    task = await store.get_task(tid)
    assert task and task.status == "complete" and task.walltime == pytest.approx(2.0) and task.instance_id == ""
    again = await store.complete(tid, c.instance_id, result)  # a retried POST: same answer, no change
    assert again.applied and again.status == "complete"
    [attempt] = await store.get_attempts(tid)
    assert attempt.status == "complete" and attempt.end and attempt.exit_codes == [0]
    assert attempt.outputs == [{"url": "file:///data/out.i3", "size": 10, "sha512": "ab" * 64}]
    assert attempt.modules[0]["argv"] == ["python", "gen.py"] and attempt.frazil_version == "1.0"
    # a late reset for the completed attempt is stale
    assert (await store.reset(tid, c.instance_id, AttemptResult())).outcome is Outcome.STALE


async def test_reset_counts_and_returns_to_waiting(store: Store) -> None:
    c = await _claimed(store)
    tid = c.task.task_id
    out = await store.reset(tid, c.instance_id, AttemptResult(time_used=1800, failure_class=FailureClass.NONPHYSICS,
                                                              kind="cvmfs", rule="cvmfs-missing", reason="no cvmfs"))
    assert out.applied and out.status == "waiting"
    task = await store.get_task(tid)
    assert task and (task.status, task.failures, task.failures_nonphysics, task.failures_infra) == ("waiting", 1, 1, 0)
    assert task.walltime_err == pytest.approx(0.5) and task.walltime_err_n == 1 and task.instance_id == ""
    [attempt] = await store.get_attempts(tid)
    assert (attempt.status, attempt.failure_class, attempt.kind, attempt.rule, attempt.reason) == (
        "reset", "nonphysics", "cvmfs", "cvmfs-missing", "no cvmfs")
    second = await _requeue_and_claim(store, tid)
    assert second.attempt == 2 and second.instance_id != c.instance_id


async def test_eleventh_nonphysics_failure_fails_the_task(store: Store) -> None:
    c = await _claimed(store)
    tid = c.task.task_id
    for n in range(1, 12):
        out = await store.reset(tid, c.instance_id, AttemptResult(kind="transfer"))
        assert out.applied
        if n <= 10:
            assert out.status == "waiting"
            c = await _requeue_and_claim(store, tid)
        else:
            assert out.status == "failed"
    task = await store.get_task(tid)
    assert task and task.status == "failed" and task.failures == 11 and task.failures_nonphysics == 11
    assert len(await store.get_attempts(tid)) == 11


async def test_infrastructure_failures_have_their_own_budget(store: Store) -> None:
    policy = RetryPolicy(max_retries=1, max_infra_failures=3)
    c = await _claimed(store)
    tid = c.task.task_id
    for _ in range(3):  # evictions do not use up the retry budget (max_retries=1)
        out = await store.reset(tid, c.instance_id, AttemptResult(failure_class=FailureClass.INFRA,
                                                                  kind="eviction"), policy)
        assert out.status == "waiting"
        c = await _requeue_and_claim(store, tid)
    out = await store.reset(tid, c.instance_id, AttemptResult(kind="memory"), policy)
    assert out.status == "waiting"  # first non-physics failure still allowed
    c = await _requeue_and_claim(store, tid, memory=64)
    out = await store.reset(tid, c.instance_id, AttemptResult(kind="eviction"), policy)
    assert out.status == "failed"  # 4th infra failure > max_infra_failures
    task = await store.get_task(tid)
    assert task and (task.failures_infra, task.failures_nonphysics, task.failures, task.evictions) == (4, 1, 5, 4)


async def test_fail_is_physics_and_final(store: Store) -> None:
    c = await _claimed(store)
    out = await store.fail(c.task.task_id, c.instance_id, AttemptResult(reason="segfault in physics"))
    assert out.applied and out.status == "failed"
    [attempt] = await store.get_attempts(c.task.task_id)
    assert attempt.status == "failed" and attempt.failure_class == "physics"
    assert (await store.fail(c.task.task_id, "other", AttemptResult())).outcome is Outcome.STALE


async def test_escalation_grows_never_shrinks_and_is_recorded(store: Store) -> None:
    c = await _claimed(store, {"memory": 2.0}, memory=16)
    tid = c.task.task_id
    out = await store.reset(tid, c.instance_id, AttemptResult(kind="memory", resources={"memory": 3.2}))
    assert out.requirement_changes["memory"]["old"] == 2.0 and out.requirement_changes["memory"]["new"] == 4.8
    task = await store.get_task(tid)
    assert task and task.requirements["memory"] == 4.8 and task.resource_class.startswith("cpu1-mem6")
    [attempt] = await store.get_attempts(tid)
    assert attempt.requirement_changes["memory"]["new"] == 4.8
    c = await _requeue_and_claim(store, tid, memory=16)
    out = await store.reset(tid, c.instance_id, AttemptResult(kind="memory", resources={"memory": 1.0}))
    assert out.requirement_changes == {}  # a smaller peak never lowers the requirement
    assert (await store.get_task(tid)).requirements["memory"] == 4.8  # type: ignore[union-attr]
    c = await _requeue_and_claim(store, tid, memory=16)
    out = await store.reset(tid, c.instance_id, AttemptResult(kind="time", resources={"time": 30}),
                            RetryPolicy(caps={"time": 24}))
    assert out.requirement_changes["time"]["new"] == 24 and out.requirement_changes["time"]["capped"]
    await store.queue_tasks(1)  # re-queued with 4.8 GB memory and 24 h
    assert await store.claim(pilot(memory=4, time=30)) is None
    assert await store.claim(pilot(memory=6, time=30)) is not None


async def test_concurrent_stale_reports_only_current_instance_applies(store: Store) -> None:
    c1 = await _claimed(store)
    tid = c1.task.task_id
    assert (await store.expire_leases(now=c1.lease_expires + 1)) == [tid]  # first pilot presumed lost
    c2 = await _requeue_and_claim(store, tid)
    results = await asyncio.gather(
        *(store.complete(tid, c1.instance_id, AttemptResult()) for _ in range(10)),
        *(store.reset(tid, c1.instance_id, AttemptResult()) for _ in range(10)),
        store.complete(tid, c2.instance_id, AttemptResult(time_used=36)),
    )
    assert [r.outcome for r in results[:20]] == [Outcome.STALE] * 20
    assert results[20].applied
    task = await store.get_task(tid)
    assert task and task.status == "complete" and task.failures == 1 and task.failures_infra == 1
    attempts = await store.get_attempts(tid)
    assert [(a.attempt, a.status) for a in attempts] == [(1, "lost"), (2, "complete")]


async def test_lease_renewal_and_expiry(store: Store) -> None:
    c = await _claimed(store)
    tid = c.task.task_id
    assert await store.renew_leases("pilot-1", [tid, "other"], 3600) == [tid]
    assert await store.renew_leases("someone-else", [tid], 3600) == []
    task = await store.get_task(tid)
    assert task and task.lease_expires and task.lease_expires > c.lease_expires
    assert await store.expire_leases(now=c.lease_expires + 10) == []  # renewed: still held
    assert await store.expire_leases(now=task.lease_expires + 1) == [tid]
    task = await store.get_task(tid)
    assert task and task.status == "waiting" and task.failures_infra == 1 and task.failures_nonphysics == 0
    [attempt] = await store.get_attempts(tid)
    assert attempt.status == "lost" and attempt.kind == "pilot-lost" and attempt.failure_class == "infra"
    assert await store.renew_leases("pilot-1", [tid], 60) == []  # the pilot must abandon it
    assert (await store.complete(tid, c.instance_id, AttemptResult())).outcome is Outcome.STALE


async def test_user_status_change_cancels_the_claim(store: Store) -> None:
    c = await _claimed(store)
    tid = c.task.task_id
    assert await store.set_task_status(tid, "suspended")
    assert (await store.complete(tid, c.instance_id, AttemptResult())).outcome is Outcome.STALE
    [attempt] = await store.get_attempts(tid)
    assert attempt.status == "cancelled"
    assert await store.task_counts_by_status(TaskFilter(task_ids=[tid])) == {"suspended": 1}


async def test_task_stats_over_complete_tasks(store: Store) -> None:
    ds, jobs = await queued_dataset(store, 3, requirements={"gpu": 1})
    for hours in (1.0, 3.0):
        c = await store.claim(pilot(gpu=1))
        assert c is not None
        await store.complete(c.task.task_id, c.instance_id, AttemptResult(time_used=hours * 3600))
    c = await store.claim(pilot(gpu=1))
    assert c is not None
    await store.reset(c.task.task_id, c.instance_id, AttemptResult(time_used=3600))
    stats = await store.task_stats_by_name(ds.dataset_id)
    assert stats["only"]["count"] == 2 and stats["only"]["gpu"] == 2
    assert stats["only"]["total_hrs"] == pytest.approx(4.0) and stats["only"]["avg_hrs"] == pytest.approx(2.0)
    assert stats["only"]["stddev_hrs"] == pytest.approx(1.0)
    assert (stats["only"]["min_hrs"], stats["only"]["max_hrs"]) == (pytest.approx(1.0), pytest.approx(3.0))
    assert stats["only"]["efficiency"] == pytest.approx(1.0)  # the reset task is not complete
