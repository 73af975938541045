"""Contract: paced retries (issue 12 item 4), on both backends.

A non-physics retry that changed nothing waits ``retry_delay`` seconds,
doubled per non-physics failure, before queueing may take it; escalated and
infrastructure retries are not held back; a user's status change ends the
wait. Small real delays (tenths of a second) keep the test short.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from server.store import AttemptResult, ClaimedTask, FailureClass, RetryPolicy, Store
from server.store.rules import retry_delay

from .helpers import pilot, queued_dataset

PACED = RetryPolicy(retry_delay=0.4, retry_delay_max=1.0)
TRANSFER = AttemptResult(failure_class=FailureClass.NONPHYSICS, kind="transfer", reason="connection refused")


async def _claim(store: Store, task_id: str, **resources: float) -> ClaimedTask:
    got = await store.claim(pilot(**resources))
    assert got is not None and got.task.task_id == task_id
    return got


async def _queue_when_eligible(store: Store, task_id: str, not_before: float) -> None:
    """Nothing is queued before ``not_before``; the task is, once it has passed."""
    assert await store.queue_tasks(10) == []
    assert await store.next_not_before() == pytest.approx(not_before)
    await asyncio.sleep(max(not_before - time.time(), 0) + 0.05)
    assert await store.queue_tasks(10) == [task_id]
    assert await store.next_not_before() is None
    task = await store.get_task(task_id)
    assert task is not None and task.status == "queued" and task.not_before is None


def test_delay_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(retry_delay=60, retry_delay_max=3600)
    assert [retry_delay(policy, n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(RetryPolicy(retry_delay=0), 3) == 0
    assert retry_delay(policy, 10_000) == 3600


async def test_nonphysics_retry_waits_and_the_wait_doubles(store: Store) -> None:
    await queued_dataset(store, 1)
    c = await store.claim(pilot())
    assert c is not None
    tid = c.task.task_id
    before = time.time()
    out = await store.reset(tid, c.instance_id, TRANSFER, PACED)
    assert out.status == "waiting"
    task = await store.get_task(tid)
    assert task is not None and task.not_before is not None
    assert before + 0.4 <= task.not_before <= time.time() + 0.4
    await _queue_when_eligible(store, tid, task.not_before)
    c = await _claim(store, tid)
    before = time.time()
    await store.reset(tid, c.instance_id, TRANSFER, PACED)
    task = await store.get_task(tid)
    assert task is not None and before + 0.8 <= task.not_before <= time.time() + 0.8  # type: ignore[operator]
    await _queue_when_eligible(store, tid, task.not_before)  # type: ignore[arg-type]


async def test_escalated_and_infrastructure_retries_are_not_held_back(store: Store) -> None:
    await queued_dataset(store, 1, requirements={"memory": 2.0})
    c = await store.claim(pilot(memory=16))
    assert c is not None
    tid = c.task.task_id
    out = await store.reset(tid, c.instance_id, AttemptResult(kind="memory", resources={"memory": 3.2}), PACED)
    assert out.requirement_changes and (await store.get_task(tid)).not_before is None  # type: ignore[union-attr]
    assert await store.queue_tasks(10) == [tid]
    for kind in ("eviction", "pilot-lost"):
        c = await _claim(store, tid, memory=16)
        await store.reset(tid, c.instance_id, AttemptResult(failure_class=FailureClass.INFRA, kind=kind), PACED)
        assert (await store.get_task(tid)).not_before is None  # type: ignore[union-attr]
        assert await store.queue_tasks(10) == [tid]
    c = await _claim(store, tid, memory=16)  # a lease that runs out: infrastructure, not held back
    assert await store.expire_leases(now=time.time() + 10_000, policy=PACED) == [tid]
    assert (await store.get_task(tid)).not_before is None  # type: ignore[union-attr]
    c = await _claim(store, tid, memory=16) if await store.queue_tasks(10) == [tid] else None
    assert c is not None
    out = await store.fail(tid, c.instance_id, AttemptResult(kind="exit"), PACED)  # physics: failed, no wait
    assert out.status == "failed" and (await store.get_task(tid)).not_before is None  # type: ignore[union-attr]


async def test_a_status_change_ends_the_wait(store: Store) -> None:
    await queued_dataset(store, 1)
    c = await store.claim(pilot())
    assert c is not None
    tid = c.task.task_id
    await store.reset(tid, c.instance_id, TRANSFER, RetryPolicy(retry_delay=3600))
    assert await store.queue_tasks(10) == [] and await store.next_not_before() is not None
    assert await store.set_task_status(tid, "idle", force=True)
    task = await store.get_task(tid)
    assert task is not None and task.status == "idle" and task.not_before is None
    assert await store.next_not_before() is None
    assert await store.release_dependencies() == 1 and await store.queue_tasks(10) == [tid]
