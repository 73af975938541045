"""A real server with its loops: paced retries (issue 12 item 4) and claims
that wait for work (item 5), over HTTP.

* A non-physics retry becomes eligible ``retry_delay_seconds`` after its
  report, doubled after the next one; GET /tasks/{id} and
  GET /datasets/{id}/tasks/{id} say when (``not_before``); the queue loop
  does not queue it before then, and a claim waiting meanwhile gets it once
  it is queued.
* A claim with ``wait`` sent before any task exists gets the task the queue
  loop queues later; the server's cap ends a longer wait; a pilot that hung
  up is given nothing.
"""
from __future__ import annotations

import asyncio
import time
import aiohttp
import pytest

from server.settings import Settings
from tests.server.conftest import RunningServer, free_port
from tests.server.test_api_pilot_support import PILOT_RESOURCES, claim, make_dataset, register

DELAY = 1.0


@pytest.fixture
def server_settings(tmp_path) -> Settings:
    """The ``server`` fixture's settings here: loops on, paced retries, waiting claims."""
    return Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), port=free_port(),
                    provider="none", loops=True, loop_interval_seconds=0.2, retry_delay_seconds=DELAY,
                    claim_wait_max_seconds=8.0, claim_rate_per_pilot=1000)


@pytest.fixture
def looping(server: RunningServer) -> RunningServer:
    return server


async def _transfer_failure(rc, task) -> dict:
    return await rc.request("POST", f"/tasks/{task['task_id']}/task_actions/reset",
                            {"instance_id": task["instance_id"], "class": "non-physics", "kind": "transfer",
                             "reason": "connection refused"})


async def test_retries_wait_a_doubling_delay_shown_in_the_task(looping: RunningServer) -> None:
    rc = looping.rest(looping.token("pilot-1", role="system"))
    user = looping.rest(looping.token("alice"))
    admin = looping.rest(looping.token("root", role="admin"))
    pilot_id = await register(rc)
    made = await make_dataset(looping.store, [{}])
    task_id, dataset_id = made.task_ids[0], made.dataset.dataset_id
    task = await claim(rc, pilot_id, wait=5)
    for attempt, delay in ((1, DELAY), (2, 2 * DELAY)):
        assert task["task_id"] == task_id and task["attempt"] == attempt
        reported = time.time()
        reply = await _transfer_failure(rc, task)
        assert reply["status"] == "waiting"
        shown = await admin.request("GET", f"/tasks/{task_id}")
        assert shown["status"] == "waiting"
        assert reported + delay - 0.05 <= shown["not_before"] <= time.time() + delay
        assert (await user.request("GET", f"/datasets/{dataset_id}/tasks/{task_id}"))["not_before"] == \
            shown["not_before"]
        task = await claim(rc, pilot_id, wait=5)  # waits on the server until the loop queues it
        assert time.time() >= shown["not_before"]  # never handed out before its time
    assert task["attempt"] == 3
    assert (await admin.request("GET", f"/tasks/{task_id}"))["not_before"] is None


async def test_a_waiting_claim_gets_work_queued_after_it_was_sent(looping: RunningServer) -> None:
    rc = looping.rest(looping.token("pilot-1", role="system"))
    pilot_id = await register(rc)
    waiting = asyncio.ensure_future(claim(rc, pilot_id, wait=5))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # nothing queued yet: the server holds the claim
    made = await make_dataset(looping.store, [{}], queue=False)  # the loops release and queue it
    task = await asyncio.wait_for(waiting, 10)
    assert task["task_id"] == made.task_ids[0]


async def _raw_claim(server: RunningServer, pilot_id: str, body: dict, timeout: float) -> tuple[int, dict]:
    token = server.token("pilot-1", role="system")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.post(f"{server.url}/task_actions/process", timeout=aiohttp.ClientTimeout(total=timeout),
                                json={"pilot_id": pilot_id, "resources": PILOT_RESOURCES, **body}) as resp:
            return resp.status, await resp.json()


async def test_wait_is_capped_checked_and_ends_for_a_pilot_that_hung_up(looping: RunningServer) -> None:
    rc = looping.rest(looping.token("pilot-1", role="system"))
    pilot_id = await register(rc)
    for bad in (-1, "5", 1e9):
        status, body = await _raw_claim(looping, pilot_id, {"wait": bad}, 10)
        assert status == 400 and "'wait'" in body["error"], body
    looping.settings.claim_wait_max_seconds = 0.3
    started = time.monotonic()
    status, body = await _raw_claim(looping, pilot_id, {"wait": 60}, 10)
    assert status == 404 and body["reason"] == "nothing_fits" and time.monotonic() - started < 5
    looping.settings.claim_wait_max_seconds = 8.0
    with pytest.raises(asyncio.TimeoutError):  # the pilot gives up (stops) while its claim waits
        await _raw_claim(looping, pilot_id, {"wait": 5}, 0.5)
    made = await make_dataset(looping.store, [{}], queue=False)
    for _ in range(100):  # the loops queue it, and nobody claims it for the pilot that left
        if (await looping.store.get_task(made.task_ids[0])).status == "queued":  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    task = await looping.store.get_task(made.task_ids[0])
    assert task is not None and task.status == "queued"
