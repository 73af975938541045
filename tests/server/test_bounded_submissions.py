"""Submissions are bounded all the way through (issue 11 item 2): the
backlog limits hold while jobs are created (per dataset and per user), job
creation stops when the store's disk or WAL is past its limit (and the
dataset and the dashboard say so), and the action worker takes turns: one
large submit delays another user's small one by at most one batch."""
from __future__ import annotations

import dataclasses
import json

import aiohttp
import pytest

from benchmarks.web import sign_in
from server.scheduling import materialize as materialize_module
from server.scheduling.action_worker import ActionWorker
from server.scheduling.backlog import materialization_state
from server.scheduling.materialize import materialize
from server.store import StoragePressure
from server.store.sqlite import checkpoint
from tests.server.user_api_helpers import CONFIG, call

TASKS_PER_JOB = len(CONFIG["tasks"])


@pytest.fixture
def server_settings(server_settings):
    return dataclasses.replace(server_settings, backlog_limit=25, user_backlog_limit=40, materialize_batch=10)


async def _submit(server, user: str, jobs: int, status: str = "processing") -> str:
    """A submitted dataset (the submit action run, its materialization left queued)."""
    status_code, body, _ = await call(server, "POST", "/actions/submit", server.token(user), body={
        "config": json.dumps(CONFIG), "jobs_submitted": jobs,
        "extra_submit_fields": json.dumps({"status": status})})
    assert status_code == 201, body
    worker = ActionWorker(server.store, server.settings, "w")
    message = await worker.run_one()
    assert message is not None and message.action == "submit"
    done = await server.store.get_action(message.message_id)
    return done.payload["dataset_id"]


async def _jobs(server, dataset_id: str) -> int:
    return await server.store.max_job_index(dataset_id) + 1


async def test_the_dataset_limit_holds_within_one_request(server) -> None:
    dataset_id = await _submit(server, "alice", 1000)
    # one request for every job: the limit (25 tasks = 8 jobs of 3) stops it while creating
    assert await materialize(server.store, server.settings, dataset_id, 1000, requested=True) == 8
    assert await materialize(server.store, server.settings, dataset_id, 1000, requested=True) == 0
    dataset = await server.store.get_dataset(dataset_id)
    state = await materialization_state(server.store, server.settings, dataset)
    assert state["jobs_materialized"] == 8 and "backlog_limit reached: 24 tasks" in state["materialization_held"]
    status, doc, _ = await call(server, "GET", f"/datasets/{dataset_id}", server.token("alice"))
    assert status == 200 and doc["jobs_materialized"] == 8 and "backlog_limit" in doc["materialization_held"]


async def test_the_user_limit_holds_across_datasets(server) -> None:
    first = await _submit(server, "alice", 1000)
    second = await _submit(server, "alice", 1000)
    other = await _submit(server, "bob", 5)
    assert await materialize(server.store, server.settings, first, 1000, requested=True) == 8  # 24 tasks
    # 40 - 24 = 16 tasks left to alice: 5 jobs, though the dataset limit would allow 8
    assert await materialize(server.store, server.settings, second, 1000, requested=True) == 5
    state = await materialization_state(server.store, server.settings, await server.store.get_dataset(second))
    assert "user_backlog_limit reached: 39 tasks of alice's datasets" in state["materialization_held"]
    assert await materialize(server.store, server.settings, other, 1000, requested=True) == 5  # bob is not held


async def test_creation_stops_when_the_disk_fills_and_says_so(server, monkeypatch) -> None:
    dataset_id = await _submit(server, "alice", 6)
    real = server.store.storage_pressure
    calls = {"n": 0}

    async def filling() -> StoragePressure:
        calls["n"] += 1  # the budget, then one look per chunk: the disk fills after the first chunk
        pressure = await real()
        return pressure if calls["n"] <= 2 else dataclasses.replace(pressure, free_bytes=10)

    monkeypatch.setattr(materialize_module, "CREATE_CHUNK", 2)
    monkeypatch.setattr(server.store, "storage_pressure", filling)
    assert await materialize(server.store, server.settings, dataset_id, 6, requested=True) == 2
    status, doc, _ = await call(server, "GET", f"/datasets/{dataset_id}", server.token("alice"))
    assert doc["jobs_materialized"] == 2 and "less than min_free_disk_gb" in doc["materialization_held"], doc
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        await sign_in(browser, server.url, server.token("root", role="admin", groups=["admin"]))
        async with browser.get(f"{server.url}/admin") as reply:
            assert reply.status == 200
            assert "Job creation stopped for every dataset: the store&#39;s disk has" in await reply.text()
        async with browser.get(f"{server.url}/dataset/{dataset_id}") as reply:
            page = await reply.text()
            assert reply.status == 200 and 'id="materialization-held"' in page and "min_free_disk_gb" in page


async def test_creation_stops_while_the_wal_is_past_its_limit(server, monkeypatch) -> None:
    dataset_id = await _submit(server, "alice", 4)
    monkeypatch.setattr(checkpoint, "WAL_LIMIT", 1)  # any WAL at all is "behind"
    assert (await server.store.storage_pressure()).log_bytes > 1
    assert await materialize(server.store, server.settings, dataset_id, 4, requested=True) == 0
    state = await materialization_state(server.store, server.settings, await server.store.get_dataset(dataset_id))
    assert "write-ahead log" in state["materialization_held"]


async def test_a_large_submit_delays_a_small_one_by_one_batch_at_most(server) -> None:
    server.settings.backlog_limit = server.settings.user_backlog_limit = 10**6
    big = await _submit(server, "alice", 55)
    small = await _submit(server, "bob", 3)
    worker = ActionWorker(server.store, server.settings, "w")
    order = []
    while (message := await worker.run_one()) is not None:
        order.append((message.payload["dataset_id"], await _jobs(server, big), await _jobs(server, small)))
    assert await _jobs(server, big) == 55 and await _jobs(server, small) == 3
    # bob's dataset was complete when alice's had one batch (10 jobs) only
    first_small_done = next(big_jobs for ds, big_jobs, small_jobs in order if small_jobs == 3)
    assert first_small_done == 10, order
    assert [ds for ds, _, _ in order].count(big) == 6  # 55 jobs in batches of 10, each re-queued at the end
