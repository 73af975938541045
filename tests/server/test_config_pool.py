"""Nothing a user sends can stall the server: the worst configs we can write,
submitted at once, are checked in the config pool's worker processes within
their CPU budget (a 400 that says so), while /healthz and pilot claims keep
being answered: the event loop never waits for them.

Not a timed test of speed (benchmarks/config_stall.py measures p99s): the
proof is that the checks' CPU time was spent in other processes — the loop's
own thread used a fraction of it — and that the loop's lag, sampled every
20 ms, stayed far below the time one check takes."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from benchmarks.worst_configs import WORST, exponential_parameters
from common.config import fill_defaults
from server.auth import default_rights
from server.keys import CONFIG_POOL
from server.scheduling.requirements import RequirementsError, TaskRequirements
from server.store import NewDataset
from tests.server.test_api_pilot_support import PILOT_RESOURCES

BUDGET_SECONDS = 1.0


@pytest.fixture
def server_settings(server_settings):
    server_settings.config_check_seconds = BUDGET_SECONDS
    server_settings.config_workers = 2
    return server_settings


async def _lag_sampler(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.02)
        lags.append(time.monotonic() - before - 0.02)


@pytest.mark.slow
async def test_worst_configs_never_stall_the_event_loop(server):
    user = {"Authorization": f"Bearer {server.token('mallory')}"}
    pilot = {"Authorization": f"Bearer {server.token('pilot-1', role='system')}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/pilots", json={"resources": PILOT_RESOURCES}, headers=pilot) as r:
            pilot_id = (await r.json())["result"]
        answered: list[int] = []
        stop = asyncio.Event()

        async def keep_calling() -> None:  # a pilot claiming and a monitor polling, all along
            while not stop.is_set():
                async with session.get(f"{server.url}/healthz") as r:
                    answered.append(r.status)
                async with session.post(f"{server.url}/task_actions/process", headers=pilot, json={
                        "pilot_id": pilot_id, "resources": PILOT_RESOURCES}) as r:
                    answered.append(r.status)  # 404: nothing queued, answered at once
                await asyncio.sleep(0.05)

        async def submit(config: dict) -> tuple[int, str]:
            async with session.post(f"{server.url}/actions/submit", headers=user,
                                    json={"config": json.dumps(config), "jobs_submitted": 100}) as r:
                return r.status, (await r.json()).get("error", "")

        lags: list[float] = []
        sampler = asyncio.create_task(_lag_sampler(lags, stop))
        caller = asyncio.create_task(keep_calling())
        loop_cpu = time.thread_time()
        replies = dict(zip(WORST, await asyncio.gather(*(submit(make()) for make in WORST.values()))))
        loop_cpu = time.thread_time() - loop_cpu
        stop.set()
        await asyncio.gather(sampler, caller)

    for name in ("exponential parameters", "ten million iterations"):
        status, error = replies[name]
        assert status == 400 and f"more than {BUDGET_SECONDS:g} s of CPU time" in error, (name, error[:300])
    assert replies["huge $eval"][0] == 400 and "$eval" in replies["huge $eval"][1]
    assert all(status < 500 for status, _ in replies.values())
    assert server.app[CONFIG_POOL].runs >= len(WORST)  # checked in the pool's processes
    # Two checks ran out of a 1 s CPU budget each; the loop's own thread (which also
    # runs this test's client) spent well under that: the work was elsewhere.
    assert loop_cpu < BUDGET_SECONDS, f"the event loop's thread used {loop_cpu:.2f} s of CPU"
    assert answered and set(answered) <= {200, 404}, answered
    # Generous: one check inline would hold the loop for its whole budget (and more wall time).
    assert max(lags) < 1.5, f"event loop lag up to {max(lags):.2f} s"


def test_materialization_reports_a_jobs_budget_as_a_requirements_error():
    config = exponential_parameters(levels=19, tasks=1)
    config["tasks"][0]["requirements"] = {"os": "$(p18)"}
    resolver = TaskRequirements.build(fill_defaults(config), 0)
    with pytest.raises(RequirementsError, match="job 3, task 't0': requirements: .*1,000,000 characters"):
        resolver.for_job(dataset=1, dataset_id="d", job=3, jobs_submitted=10, task_id="x")


async def test_put_config_is_checked_in_the_pool(server):
    dataset = await server.store.create_dataset(NewDataset(description="d", jobs_submitted=1, tasks_submitted=1,
                                                           tasks_per_job=1, group="users", username="alice"))
    await server.store.set_dataset_rights(dataset.dataset_id, default_rights("alice", "users"))
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    pool = server.app[CONFIG_POOL]
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{server.url}/config/{dataset.dataset_id}", headers=headers,
                               json={"version": 3.2, "tasks": "not a list"}) as reply:
            assert reply.status == 400 and "tasks" in (await reply.json())["error"]
        async with session.put(f"{server.url}/config/{dataset.dataset_id}", headers=headers, json={
                "version": 3.2, "tasks": [{"name": "a", "trays": [{"modules": [{"src": "x.py"}]}]}]}) as reply:
            assert reply.status == 200, await reply.text()
    assert pool.runs == 2
    assert (await server.store.get_config(dataset.dataset_id)).config["tasks"][0]["name"] == "a"
