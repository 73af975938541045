"""Pilot life cycle over real HTTP: register, heartbeat, claim, report, fencing."""
from __future__ import annotations

import asyncio

import json
import math
import time

import aiohttp
import pytest
import requests

from common.plan import JobContext, build_task_plan
from common.protocol import ClaimReply, ErrorReply, HeartbeatReply
from server.keys import CLAIM_CACHE, CLAIM_LIMITER
from server.scheduling.reports import UsageMeter
from server.store import NewDataset, NewJob, NewTask
from tests.server.test_api_pilot_support import PILOT_RESOURCES, claim, make_dataset, register


async def test_register_heartbeat_claim_processing_complete(server):
    made = await make_dataset(server.store)
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc, os=["RHEL_9_x86_64"], provider="local", version="1.0")
    doc = await rc.request("GET", f"/pilots/{pilot_id}")
    assert doc["site"] == "test-site" and doc["os"] == ["RHEL_9_x86_64"] and doc["state"] == "active"

    task = await claim(rc, pilot_id)
    assert task["task_id"] == made.task_ids[0]
    for key in ("instance_id", "dataset_id", "job_id", "job_index", "name", "task_index", "requirements"):
        assert key in task
    reply = ClaimReply.parse(task)  # the server's reply is the protocol's message (what the pilot parses)
    assert (reply.task_id, reply.instance_id, reply.attempt) == (task["task_id"], task["instance_id"], 1)
    assert task["config_version"] == made.version
    assert task["dataset"] == made.dataset.dataset and task["jobs_submitted"] == 1 and task["debug"] is False
    assert task["config"]["tasks"][0]["name"] == "generate"
    assert task["scratch_url"] == f"{server.url}/scratch"
    assert task["osdf_federation"] == "pelican://osg-htc.org" and "pelican_ca" not in task
    # the reply is enough to build the task plan without another call
    plan = build_task_plan(task["config"], task["task_index"],
                           JobContext(dataset=task["dataset"], job=task["job_index"],
                                      jobs_submitted=task["jobs_submitted"], dataset_id=task["dataset_id"]))
    assert plan.trays[0].modules[0].argv[-2:] == ["--seed", "0"]

    beat = await rc.request("PATCH", f"/pilots/{pilot_id}", {"free": {"cpu": 3}, "tasks": [task["task_id"]]})
    assert beat["drain"] is False and beat["tasks"] == [task["task_id"]]
    assert HeartbeatReply.parse(beat).tasks == [task["task_id"]]

    ack = await rc.request("POST", f"/tasks/{task['task_id']}/task_actions/processing",
                           {"instance_id": task["instance_id"]})
    assert ack["status"] == "processing"
    done = await rc.request("POST", f"/tasks/{task['task_id']}/task_actions/complete",
                            {"instance_id": task["instance_id"], "time_used": 7200, "hostname": "node1",
                             "resources": {"memory": 0.5, "time": 2.0}})
    assert done == {"status": "complete"}
    stored = await server.store.get_task(task["task_id"])
    assert stored.status == "complete" and stored.walltime == pytest.approx(2.0)
    assert (await server.store.get_job(stored.job_id)).status == "complete"  # rolled up at once
    assert (await server.store.get_dataset(made.dataset.dataset_id)).status == "complete"
    usage = {(u.kind, u.name): u.core_hours for u in await server.store.list_usage()}
    assert usage[("user", "alice")] == pytest.approx(2.0)

    await rc.request("DELETE", f"/pilots/{pilot_id}")
    assert await server.store.get_pilot(pilot_id) is None


async def test_empty_queue_is_404_with_retry_after(server):
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc)
    with pytest.raises(requests.HTTPError) as err:
        await claim(rc, pilot_id)
    assert err.value.response.status_code == 404
    assert int(err.value.response.headers["Retry-After"]) >= 1


async def test_claims_never_exceed_free_resources(server):
    made = await make_dataset(server.store, [{"gpu": 1, "memory": 2}, {"memory": 6}, {"cpu": 1}])
    gpu_task, big_task, small_task = made.task_ids
    rc = server.rest(server.token("pilot-1", role="pilot"))
    cpu_pilot = await register(rc)
    small = {"cpu": 1, "gpu": 0, "memory": 4.0, "disk": 10.0, "time": 10.0}
    first = await claim(rc, cpu_pilot, small)
    assert first["task_id"] == small_task  # neither the GPU task nor the 6 GB one fits
    with pytest.raises(requests.HTTPError) as err:
        await claim(rc, cpu_pilot, small)
    assert err.value.response.status_code == 404
    gpu_pilot = await register(rc, {**PILOT_RESOURCES, "gpu": 1})
    second = await claim(rc, gpu_pilot, {**PILOT_RESOURCES, "gpu": 1})
    assert second["task_id"] == gpu_task  # a pilot with a free GPU gets the GPU task first
    third = await claim(rc, cpu_pilot, PILOT_RESOURCES)
    assert third["task_id"] == big_task


async def test_stale_complete_after_reap_and_reclaim_is_refused(server):
    made = await make_dataset(server.store)
    task_id = made.task_ids[0]
    rc = server.rest(server.token("pilot-1", role="pilot"))
    slow = await register(rc)
    fast = await register(rc)
    first = await claim(rc, slow)
    reaped = await server.store.expire_leases(now=time.time() + server.settings.lease_seconds + 1)
    assert reaped == [task_id]
    await server.store.queue_tasks(10, dataset_id=made.dataset.dataset_id)
    second = await claim(rc, fast)
    assert second["task_id"] == task_id and second["instance_id"] != first["instance_id"]

    # the slow pilot learns it lost the task from its heartbeat ...
    beat = await rc.request("PATCH", f"/pilots/{slow}", {"tasks": [task_id]})
    assert beat["tasks"] == []
    # ... and its late report changes nothing
    for action in ("complete", "reset", "failed", "processing"):
        with pytest.raises(requests.HTTPError) as err:
            extra = {"time_used": 5} if action != "processing" else {}
            await rc.request("POST", f"/tasks/{task_id}/task_actions/{action}",
                             {"instance_id": first["instance_id"], **extra})
        assert err.value.response.status_code == 409, action
        assert "stale instance_id" in err.value.response.json()["error"]
    assert (await server.store.get_task(task_id)).status == "processing"

    for _ in range(2):  # a retried report is answered again but applied once
        reply = await rc.request("POST", f"/tasks/{task_id}/task_actions/complete",
                                 {"instance_id": second["instance_id"], "time_used": 3600})
        assert reply == {"status": "complete"}
    usage = {(u.kind, u.name): u.core_hours for u in await server.store.list_usage()}
    assert usage[("user", "alice")] == pytest.approx(1.0)
    attempts = await server.store.get_attempts(task_id)
    assert [a.status for a in attempts] == ["lost", "complete"]
    assert (await server.store.get_task(task_id)).status == "complete"


async def test_deleting_a_pilot_returns_its_tasks_at_once(server):
    made = await make_dataset(server.store)
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc)
    task = await claim(rc, pilot_id)
    await rc.request("PATCH", f"/pilots/{pilot_id}", {"tasks": [task["task_id"]]})
    reply = await rc.request("DELETE", f"/pilots/{pilot_id}")
    assert reply["released"] == [made.task_ids[0]]
    stored = await server.store.get_task(task["task_id"])
    assert stored.status == "waiting" and stored.failures_infra == 1 and stored.failures_nonphysics == 0


async def test_drain_stops_claims(server):
    """The claim path reads an active pilot's record at most once a
    ``pilot_ttl``: a drain stops its claims within that time."""
    await make_dataset(server.store, jobs=2)
    server.app[CLAIM_CACHE].pilot_ttl = 0.2
    admin = server.rest(server.token("root", role="admin", groups=["admin"]))
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc)
    await claim(rc, pilot_id)  # the pilot's record is now cached
    await admin.request("PATCH", f"/pilots/{pilot_id}", {"drain": True})
    assert (await rc.request("PATCH", f"/pilots/{pilot_id}", {}))["drain"] is True
    await asyncio.sleep(0.3)
    with pytest.raises(requests.HTTPError) as err:
        await claim(rc, pilot_id)
    assert err.value.response.status_code == 404 and err.value.response.json()["reason"] == "draining"
    listed = await admin.request("GET", "/pilots", {"state": "active"})
    assert list(listed) == [pilot_id]


async def test_claim_flooding_gets_429(server):
    server.settings.claim_rate_per_pilot = 2.0
    server.app[CLAIM_LIMITER].set_rate(2.0)
    token = server.token("pilot-1", role="pilot")
    rc = server.rest(token)
    pilot_id = await register(rc)
    other = await register(rc)
    headers = {"Authorization": f"Bearer {token}"}
    # RestClient itself retries 429s, so the raw answers are read with aiohttp
    async with aiohttp.ClientSession(server.url, headers=headers) as session:
        async def status(pilot: str) -> tuple[int, str | None]:
            async with session.post("/task_actions/process",
                                    json={"pilot_id": pilot, "resources": PILOT_RESOURCES}) as reply:
                return reply.status, reply.headers.get("Retry-After")
        answers = [await status(pilot_id) for _ in range(6)]
        assert [code for code, _ in answers[:2]] == [404, 404]  # a burst of one second's worth is fine
        limited = [after for code, after in answers if code == 429]
        assert limited and all(int(after) >= 1 for after in limited)
        assert (await status(other))[0] == 404  # the limit is per pilot


@pytest.mark.parametrize("path,body,message", [
    ("/pilots", {"site": "x"}, "missing key: resources"),
    ("/pilots", {"resources": {"cpu": -1, "memory": 1, "disk": 1}}, "'resources.cpu'"),
    ("/pilots", {"resources": {"cpu": 1, "memory": 1, "disk": 1}, "colour": "red"}, "invalid keys found: 'colour'"),
    ("/pilots", {"resources": {"cpu": 1, "memory": 1, "disk": 1}, "host": "n1"}, "invalid keys found: 'host'"),
    ("/task_actions/process", {"pilot_id": "x", "resources": {"cpu": "four", "memory": 1, "disk": 1, "time": 1}},
     "'resources.cpu'"),
    ("/task_actions/process", {"pilot_id": "x", "resources": {"cpu": 1, "memory": 1, "disk": 1}},
     "missing key: time in resources"),
])
async def test_bad_bodies_are_400_naming_the_field(server, path, body, message):
    rc = server.rest(server.token("pilot-1", role="pilot"))
    with pytest.raises(requests.HTTPError) as err:
        await rc.request("POST", path, body)
    assert err.value.response.status_code == 400
    assert message in err.value.response.json()["error"]
    assert await server.store.list_pilots() == []


async def test_errors_a_pilot_acts_on_carry_a_reason(server):
    """The pilot reads ``reason`` (common.protocol.Reason), never the message."""
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc)
    headers = {"Authorization": f"Bearer {server.token('pilot-1', role='pilot')}"}
    async with aiohttp.ClientSession(server.url, headers=headers) as session:
        for method, path, body, status, reason in [
            ("POST", "/task_actions/process", {"pilot_id": "nope", "resources": PILOT_RESOURCES}, 404,
             "unknown_pilot"),
            ("PATCH", "/pilots/nope", {"tasks": []}, 404, "unknown_pilot"),
            ("DELETE", "/pilots/nope", None, 404, "unknown_pilot"),
            ("POST", "/tasks/nope/task_actions/complete", {"instance_id": "i"}, 404, "unknown_task"),
            ("POST", "/task_actions/process", {"pilot_id": pilot_id, "resources": PILOT_RESOURCES}, 404,
             "nothing_fits"),
        ]:
            async with session.request(method, path, json=body) as reply:
                error = ErrorReply.parse(await reply.json())  # the protocol's shape, IceProd's fields
                assert (reply.status, error.code, error.reason) == (status, status, reason), path
        async with session.post("/task_actions/process",
                                json={"pilot_id": pilot_id, "resources": PILOT_RESOURCES}) as reply:
            assert "Retry-After" in reply.headers


async def test_bad_reports_are_400_and_change_nothing(server):
    made = await make_dataset(server.store)
    rc = server.rest(server.token("pilot-1", role="pilot"))
    task = await claim(rc, await register(rc))
    url = f"/tasks/{made.task_ids[0]}/task_actions/complete"
    for body, message in [
        ({"time_used": 1}, "missing key: instance_id"),
        ({"instance_id": task["instance_id"], "time_used": "soon"}, "'time_used'"),
        ({"instance_id": task["instance_id"], "outputs": [{"url": "file:///x", "size": 1, "sha512": "abc"}]}, "sha512"),
        ({"instance_id": task["instance_id"], "outputs": [{"url": "file:///x"}]}, "needs its size and sha512"),
        ({"instance_id": task["instance_id"], "class": "bad luck"}, "'class'"),
    ]:
        with pytest.raises(requests.HTTPError) as err:
            await rc.request("POST", url, body)
        assert err.value.response.status_code == 400, body
        assert message in err.value.response.json()["error"], body
    assert (await server.store.get_task(made.task_ids[0])).status == "processing"
    with pytest.raises(requests.HTTPError) as err:
        await rc.request("POST", "/tasks/nosuchtask/task_actions/complete", {"instance_id": "x"})
    assert err.value.response.status_code == 404


async def test_pilot_routes_refuse_users_and_accept_admins(server):
    user = server.rest(server.token("alice"))
    with pytest.raises(requests.HTTPError) as err:
        await register(user)
    assert err.value.response.status_code == 403
    admin = server.rest(server.token("root", role="admin", groups=["admin"]))
    pilot_id = await register(admin)
    assert pilot_id in await admin.request("GET", "/pilots")
    anonymous = server.rest(None)
    with pytest.raises(requests.HTTPError) as err:
        await anonymous.request("GET", "/pilots")
    assert err.value.response.status_code == 401


async def test_dataset_rolls_up_when_its_last_job_ends(server):
    made = await make_dataset(server.store, jobs=3)
    did = made.dataset.dataset_id
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc)
    tasks = [await claim(rc, pilot_id) for _ in range(3)]

    async def report(task, action, **body):
        await rc.request("POST", f"/tasks/{task['task_id']}/task_actions/{action}",
                         {"instance_id": task["instance_id"], **body})

    await report(tasks[0], "complete")
    await report(tasks[1], "failed", reason="bad physics")
    dataset = await server.store.get_dataset(did)
    assert dataset.status == "processing"  # a job is still running
    assert (await server.store.get_job(tasks[1]["job_id"])).status == "errors"
    await report(tasks[2], "complete")
    assert (await server.store.get_dataset(did)).status == "errors"  # nothing left running

    other = await make_dataset(server.store, jobs=2)
    tasks = [await claim(rc, pilot_id) for _ in range(2)]
    for task in tasks:
        assert (await server.store.get_dataset(other.dataset.dataset_id)).status == "processing"
        await report(task, "complete")
    assert (await server.store.get_dataset(other.dataset.dataset_id)).status == "complete"


async def test_usage_meter_batches_writes(server):
    meter = UsageMeter(interval=3600)
    await meter.add(server.store, "alice", "users", 1.0)  # the first report is written at once
    await meter.add(server.store, "alice", "users", 2.0)  # then at most once per interval
    usage = {(u.kind, u.name): u.core_hours for u in await server.store.list_usage()}
    assert usage == {("user", "alice"): 1.0, ("group", "users"): 1.0} and meter.pending == {("alice", "users"): 2.0}
    meter.flushed = -math.inf
    await meter.add(server.store, "bob", "simprod", 0.5)
    usage = {(u.kind, u.name): u.core_hours for u in await server.store.list_usage()}
    assert usage[("user", "alice")] == 3.0 and usage[("group", "simprod")] == 0.5 and meter.pending == {}


async def test_a_lost_pilot_that_comes_back_is_active_again(server):
    await make_dataset(server.store, jobs=2)
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc)
    assert await server.store.mark_lost_pilots(time.time() + 10) == [pilot_id]
    await rc.request("PATCH", f"/pilots/{pilot_id}", {"tasks": []})
    assert (await server.store.get_pilot(pilot_id)).state == "active"
    await server.store.mark_lost_pilots(time.time() + 10)
    assert (await claim(rc, pilot_id))["pilot_id"] == pilot_id
    assert (await server.store.get_pilot(pilot_id)).state == "active"
    await server.store.set_pilot_state(pilot_id, "exited")
    with pytest.raises(requests.HTTPError) as err:
        await claim(rc, pilot_id)
    assert err.value.response.status_code == 404 and "exited" in err.value.response.json()["error"]


async def test_claim_of_a_task_without_config_says_so(server):
    dataset = await server.store.create_dataset(NewDataset(description="bare", jobs_submitted=1, tasks_per_job=1,
                                                           group="users", username="alice"))
    await server.store.create_jobs(dataset.dataset_id, [NewJob(job_index=0, tasks=[NewTask(name="a", task_index=0)])])
    await server.store.release_dependencies(dataset_id=dataset.dataset_id)
    await server.store.queue_tasks(10)
    rc = server.rest(server.token("pilot-1", role="pilot"))
    task = await claim(rc, await register(rc))
    assert task["config"] is None and task["config_version"] is None and task["dataset"] == dataset.dataset
    # the newest version is what a task without a recorded version runs
    version = await server.store.add_config_version(dataset.dataset_id, {"version": 3.2, "tasks": []}, "alice")
    cache = server.app[CLAIM_CACHE]
    cache._latest.clear()
    found_version, text = await cache.config_json(server.store, dataset.dataset_id, None)
    assert found_version == version and json.loads(text) == {"version": 3.2, "tasks": []}
