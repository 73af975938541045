"""Random interleavings of claims, reports (fresh, repeated and stale), lease
expiry and requeueing by several pilots over HTTP. Whatever the order:
no 5xx, a stale claim never changes anything, and no task completes twice."""
from __future__ import annotations

import random
import time

import pytest
import requests

from tests.server.test_api_pilot_support import claim, make_dataset, register


async def _call(rc, path: str, body: dict) -> tuple[int, dict | None]:
    try:
        return 200, await rc.request("POST", path, body)
    except requests.HTTPError as exc:
        assert exc.response.status_code < 500, exc.response.text
        return exc.response.status_code, None


@pytest.mark.parametrize("seed", range(4))
async def test_random_interleavings_keep_the_invariants(server, seed):
    rng = random.Random(seed)
    made = await make_dataset(server.store, jobs=6)
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilots = [await register(rc) for _ in range(3)]
    held: list[dict] = []  # claims as the pilots believe they hold them (some are stale)
    clock = time.time()
    for _ in range(120):
        op = rng.choice(["claim", "claim", "report", "report", "report", "expire", "queue"])
        if op == "claim":
            status, task = await _call(rc, "/task_actions/process",
                                       {"pilot_id": rng.choice(pilots), "resources": {"cpu": 1, "memory": 2,
                                                                                      "disk": 2, "time": 10}})
            assert status in (200, 404)
            if task:
                held.append(task)
        elif op == "report" and held:
            task = rng.choice(held)
            action = rng.choice(["complete", "complete", "reset", "failed", "processing"])
            current = await server.store.get_task(task["task_id"])
            fresh = current.status == "processing" and current.instance_id == task["instance_id"]
            before = await server.store.get_attempts(task["task_id"])
            status, _ = await _call(rc, f"/tasks/{task['task_id']}/task_actions/{action}",
                                    {"instance_id": task["instance_id"], **({} if action == "processing" else
                                                                            {"time_used": 1, "reason": "test"})})
            if fresh:
                assert status == 200
            elif status == 409:  # stale: nothing changed
                after = await server.store.get_task(task["task_id"])
                assert after.to_doc() == current.to_doc()
                assert await server.store.get_attempts(task["task_id"]) == before
            else:  # a repeat of the report that ended this attempt: answered, not applied again
                assert status == 200 and action != "processing"
                assert [a.status for a in await server.store.get_attempts(task["task_id"])] == \
                    [a.status for a in before]
        elif op == "expire":
            clock += server.settings.lease_seconds + 1
            await server.store.expire_leases(now=clock)
        else:
            await server.store.queue_tasks(100)
    for task_id in made.task_ids:
        task = await server.store.get_task(task_id)
        statuses = [a.status for a in await server.store.get_attempts(task_id)]
        assert statuses.count("complete") <= 1
        assert (task.status == "complete") == (statuses.count("complete") == 1)
        assert statuses.count("processing") == (1 if task.status == "processing" else 0)
