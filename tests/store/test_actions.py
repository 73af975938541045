"""Contract: action messages (the server's durable /actions/* queue)."""
from __future__ import annotations

import asyncio

import pytest

from server.store import InvalidArgumentError, Store, nowstr


async def test_add_dedupe_get_latest(store: Store) -> None:
    m1 = await store.add_action("materialization", {"num": 100}, dataset_id="d1", dedupe_key="d1")
    assert m1.status == "queued" and m1.attempts == 0 and m1.payload == {"num": 100} and m1.created_at
    assert (await store.add_action("materialization", {"num": 5}, dataset_id="d1", dedupe_key="d1")) == m1
    other = await store.add_action("submit", {"x": 1}, dataset_id="d1", dedupe_key="d1")  # other action
    assert other.message_id != m1.message_id
    assert await store.get_action(m1.message_id) == m1
    assert await store.get_action("missing") is None
    assert (await store.latest_action("materialization", "d1")) == m1
    assert await store.latest_action("materialization", "d2") is None
    with pytest.raises(InvalidArgumentError):
        await store.add_action("submit", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_pop_order_and_counts(store: Store) -> None:
    low = await store.add_action("submit", {}, priority=1)
    old = await store.add_action("submit", {}, priority=10)
    new = await store.add_action("submit", {}, priority=10)
    assert await store.action_counts("submit") == {"queued": 3, "processing": 0, "error": 0, "complete": 0}
    order = [(await store.pop_action("w")) for _ in range(3)]
    assert [m.message_id for m in order if m] == [old.message_id, new.message_id, low.message_id]
    assert order[0] and order[0].status == "processing" and order[0].attempts == 1 and order[0].worker_id == "w"
    assert await store.pop_action("w") is None
    assert await store.action_counts("submit") == {"queued": 0, "processing": 3, "error": 0, "complete": 0}
    assert await store.action_counts("nothing") == {"queued": 0, "processing": 0, "error": 0, "complete": 0}


async def test_concurrent_poppers_never_share(store: Store) -> None:
    for i in range(20):
        await store.add_action("job_status", {"i": i})
    popped = await asyncio.gather(*(store.pop_action(f"w{i}") for i in range(30)))
    ids = [m.message_id for m in popped if m is not None]
    assert len(ids) == 20 and len(set(ids)) == 20


async def test_finish_progress_stale_takeover_and_cleanup(store: Store) -> None:
    m = await store.add_action("dataset_status", {"status": "suspended"})
    taken = await store.pop_action("w1")
    assert taken and taken.message_id == m.message_id
    assert await store.update_action_progress(m.message_id, 40, {"done": 4})
    assert not await store.finish_action(m.message_id, "w2", "complete")  # not the holder
    again = await store.pop_action("w2", stale_after=0)  # w1 presumed dead: lock taken over
    assert again and again.message_id == m.message_id and again.attempts == 2 and again.worker_id == "w2"
    assert not await store.finish_action(m.message_id, "w1", "complete")  # fenced by worker_id
    assert await store.finish_action(m.message_id, "w2", "complete", payload_update={"result": "ok"})
    done = await store.get_action(m.message_id)
    assert done and done.status == "complete" and done.payload == {"status": "suspended", "done": 4, "result": "ok"}
    assert not await store.update_action_progress(m.message_id, 50)  # not processing any more
    failed = await store.add_action("dataset_status", {})
    await store.pop_action("w3")
    assert await store.finish_action(failed.message_id, "w3", "error", error_message="boom")
    released = await store.add_action("dataset_status", {})
    await store.pop_action("w4")
    assert await store.finish_action(released.message_id, "w4", "queued")  # handed back
    back = await store.get_action(released.message_id)
    assert back and back.status == "queued" and back.worker_id is None
    with pytest.raises(InvalidArgumentError):
        await store.finish_action(released.message_id, "w4", "bogus")
    with pytest.raises(InvalidArgumentError):
        await store.update_action_progress(released.message_id, 101)
    assert await store.delete_actions_before(nowstr()) == 2  # the complete and the error one
    assert await store.action_counts("dataset_status") == {"queued": 1, "processing": 0, "error": 0, "complete": 0}
