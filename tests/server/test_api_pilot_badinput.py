"""Nasty input to the pilot-side routes: always a 4xx naming the problem, never a 500."""
from __future__ import annotations

import aiohttp
import pytest

from tests.server.test_api_pilot_support import PILOT_RESOURCES, claim, make_dataset, register

HUGE = 10 ** 40


@pytest.fixture
async def setup(server):
    made = await make_dataset(server.store)
    token = server.token("pilot-1", role="pilot")
    rc = server.rest(token)
    pilot_id = await register(rc)
    task = await claim(rc, pilot_id)
    return made, pilot_id, task, {"Authorization": f"Bearer {token}"}


async def test_numbers_out_of_range_and_nan(server, setup):
    made, pilot_id, task, headers = setup
    tid, iid = task["task_id"], task["instance_id"]
    cases = [
        ("POST", "/pilots", {"resources": {"cpu": HUGE, "memory": 1, "disk": 1}}),
        ("POST", "/task_actions/process", {"pilot_id": pilot_id, "resources": {**PILOT_RESOURCES, "memory": HUGE}}),
        ("PATCH", f"/pilots/{pilot_id}", {"free": {"disk": HUGE}}),
        ("POST", f"/tasks/{tid}/task_actions/complete", {"instance_id": iid, "time_used": HUGE}),
        ("POST", f"/tasks/{tid}/task_actions/reset", {"instance_id": iid, "kind": "memory",
                                                      "resources": {"memory": HUGE}}),
        ("POST", f"/tasks/{tid}/task_actions/reset", {"instance_id": iid, "exit_code": HUGE}),
        ("POST", "/logs", {"data": "x", "task_id": tid, "attempt": HUGE}),
    ]
    async with aiohttp.ClientSession(server.url, headers=headers) as session:
        for method, path, body in cases:
            async with session.request(method, path, json=body) as reply:
                assert reply.status == 400, (path, body)
                assert "key" in (await reply.json())["error"]
        for text in ('{"instance_id": "%s", "time_used": NaN}' % iid,
                     '{"instance_id": "%s", "kind": "memory", "resources": {"memory": NaN}}' % iid):
            async with session.post(f"/tasks/{tid}/task_actions/reset", data=text,
                                    headers={"Content-Type": "application/json"}) as reply:
                assert reply.status == 400 and "is not a number" in (await reply.json())["error"]
        async with session.get(f"/scratch/{'9' * 30}/0/x") as reply:
            assert reply.status == 404
        async with session.put(f"/scratch/{made.dataset.dataset}/0/{'n' * 300}", data=b"x") as reply:
            assert reply.status == 400 and "longer than 255" in (await reply.json())["error"]
        deep = "/".join(["d" * 250] * 20)  # each name fits, the whole path does not
        async with session.put(f"/scratch/{made.dataset.dataset}/{deep}/x", data=b"x") as reply:
            assert reply.status == 400 and "cannot store" in (await reply.json())["error"]
    stored = await server.store.get_task(tid)
    assert stored.status == "processing" and stored.failures == 0


async def test_wrong_shapes(server, setup):
    _, pilot_id, task, headers = setup
    tid, iid = task["task_id"], task["instance_id"]
    cases = [
        ("POST", "/pilots", [1, 2]),
        ("POST", "/pilots", {"resources": {"cpu": 1, "memory": 1, "disk": 1}, "os": 5}),
        ("POST", "/task_actions/process", {"pilot_id": pilot_id}),
        ("PATCH", f"/pilots/{pilot_id}", {"tasks": "all"}),
        ("POST", f"/tasks/{tid}/task_actions/complete", {"instance_id": iid, "outputs": "x"}),
        ("POST", f"/tasks/{tid}/task_actions/complete", {"instance_id": iid, "modules": [1]}),
        ("POST", f"/tasks/{tid}/task_actions/failed", {"instance_id": iid, "signal": 0}),
        ("POST", f"/tasks/{tid}/logs", {"instance_id": iid}),
        ("PATCH", "/logs/x", {"append": 3}),
        ("POST", f"/tasks/{tid}/task_stats", ["not", "an", "object"]),
    ]
    async with aiohttp.ClientSession(server.url, headers=headers) as session:
        for method, path, body in cases:
            async with session.request(method, path, json=body) as reply:
                assert reply.status == 400, (path, body)
        async with session.post("/task_actions/process", data=b"{not json") as reply:
            assert reply.status == 400 and "not valid JSON" in (await reply.json())["error"]
        async with session.get("/pilots", params={"state": "sleepy"}) as reply:
            assert reply.status == 400 and "unknown pilot state" in (await reply.json())["error"]
        async with session.patch("/pilots/nobody", json={}) as reply:
            assert reply.status == 404
    assert (await server.store.get_task(tid)).status == "processing"
    assert len(await server.store.list_pilots()) == 1
