"""The failure policy behind reset/failed reports (DESIGN.md §3.4), over HTTP."""
from __future__ import annotations

import pytest

from tests.server.test_api_pilot_support import claim, make_dataset, register


async def _claim_one(server, rc, pilot_id):
    await server.store.queue_tasks(100)
    return await claim(rc, pilot_id)


async def _report(rc, task, action, **body):
    return await rc.request("POST", f"/tasks/{task['task_id']}/task_actions/{action}",
                            {"instance_id": task["instance_id"], **body})


@pytest.fixture
async def pilot(server):
    rc = server.rest(server.token("pilot-1", role="pilot"))
    return rc, await register(rc)


async def test_memory_failure_escalates_requirements_from_the_peak(server, pilot):
    rc, pilot_id = pilot
    made = await make_dataset(server.store, [{"memory": 2}])
    task = await _claim_one(server, rc, pilot_id)
    reply = await _report(rc, task, "reset", **{"class": "non-physics", "kind": "memory",
                                                "reason": "killed by the pilot: over its memory request",
                                                "resources": {"memory": 3.2, "time": 0.1}, "time_used": 360})
    assert reply["status"] == "waiting" and reply["class"] == "non-physics"
    assert reply["requirements"]["memory"] == pytest.approx(4.8)  # max(2, 1.5 x 3.2)
    assert reply["requirement_changes"]["memory"]["old"] == 2
    stored = await server.store.get_task(made.task_ids[0])
    assert stored.requirements["memory"] == pytest.approx(4.8) and stored.failures_nonphysics == 1
    attempt = (await server.store.get_attempts(made.task_ids[0]))[-1]
    assert attempt.status == "reset" and attempt.kind == "memory" and attempt.failure_class == "nonphysics"
    assert attempt.resources_used["memory"] == pytest.approx(3.2)
    assert attempt.requirement_changes["memory"]["new"] == pytest.approx(4.8)

    # a second, huge peak is capped by the server's setting
    task = await _claim_one(server, rc, pilot_id)
    reply = await _report(rc, task, "reset", kind="memory", resources={"memory": 500})
    assert reply["requirements"]["memory"] == server.settings.max_memory_gb


async def test_server_classifies_raw_evidence(server, pilot):
    rc, pilot_id = pilot
    made = await make_dataset(server.store, [{}, {}])
    cvmfs, physics = made.task_ids
    first = await _claim_one(server, rc, pilot_id)
    # sent to "failed", but the evidence says CVMFS broke: the server retries it
    reply = await _report(rc, first, "failed", exit_code=1,
                          stderr="reading config\ncvmfs2: failed to load root file catalog\n")
    assert reply["status"] == "waiting" and reply["class"] == "non-physics" and reply["rule"] == "cvmfs-client"
    second = await _claim_one(server, rc, pilot_id)
    assert second["task_id"] in (cvmfs, physics)
    # a Python traceback matches no rule: physics, the task fails at once
    reply = await _report(rc, second, "reset", exit_code=1, stderr="Traceback...\nValueError: bad energy\n")
    assert reply["status"] == "failed" and reply["class"] == "physics"
    attempt = (await server.store.get_attempts(second["task_id"]))[-1]
    assert attempt.failure_class == "physics" and "bad energy" in attempt.reason


async def test_a_kill_hint_wins_over_the_output(server, pilot):
    rc, pilot_id = pilot
    await make_dataset(server.store, [{"time": 1}])
    task = await _claim_one(server, rc, pilot_id)
    reply = await _report(rc, task, "reset", kind="time", signal=9, stderr="Traceback: KeyboardInterrupt",
                          resources={"time": 1.0}, time_used=3600)
    assert reply["class"] == "non-physics" and reply["kind"] == "time" and reply["requirements"]["time"] == 1.5


async def test_physics_failure_fails_the_task(server, pilot):
    rc, pilot_id = pilot
    made = await make_dataset(server.store)
    task = await _claim_one(server, rc, pilot_id)
    reply = await _report(rc, task, "failed", reason="energy out of range", time_used=60)
    assert reply["status"] == "failed" and reply["class"] == "physics"
    stored = await server.store.get_task(made.task_ids[0])
    assert stored.status == "failed" and stored.failures == 1
    assert (await server.store.get_job(stored.job_id)).status == "errors"  # rolled up at once


async def test_eleventh_non_physics_failure_fails(server, pilot):
    rc, pilot_id = pilot
    made = await make_dataset(server.store)
    for number in range(1, 12):
        task = await _claim_one(server, rc, pilot_id)
        reply = await _report(rc, task, "reset", reason="transfer input files failure")
        assert reply["status"] == ("waiting" if number <= server.settings.max_retries else "failed"), number
    stored = await server.store.get_task(made.task_ids[0])
    assert stored.status == "failed" and stored.failures_nonphysics == 11
    # The pilot's stats say "reset" (a retryable failure to it); the last entry of a task that
    # ended failed says failed, an earlier attempt's stays reset.
    for instance_id in (task["instance_id"], "earlier-attempt"):
        await rc.request("POST", f"/tasks/{task['task_id']}/task_stats",
                         {"instance_id": instance_id, "status": "reset", "task_name": "t"})
    stats = await server.store.list_task_stats(task_id=task["task_id"])
    assert sorted(row["stats"]["status"] for row in stats.rows) == ["failed", "reset"]


async def test_evictions_do_not_use_the_retry_budget(server, pilot):
    rc, pilot_id = pilot
    made = await make_dataset(server.store)
    for _ in range(12):
        task = await _claim_one(server, rc, pilot_id)
        reply = await _report(rc, task, "reset", kind="eviction", time_used=10)
        assert reply["status"] == "waiting" and reply["infrastructure"] is True
    stored = await server.store.get_task(made.task_ids[0])
    assert stored.failures_nonphysics == 0 and stored.failures_infra == 12 and stored.evictions == 12
    task = await _claim_one(server, rc, pilot_id)  # and the task still gets its full retry budget
    reply = await _report(rc, task, "reset", reason="transfer input files failure")
    assert reply["status"] == "waiting"


async def test_infra_budget_is_bounded_too(server, pilot):
    rc, pilot_id = pilot
    server.settings.max_infra_failures = 2
    await make_dataset(server.store)
    statuses = []
    for _ in range(3):
        task = await _claim_one(server, rc, pilot_id)
        statuses.append((await _report(rc, task, "reset", **{"class": "infra", "kind": "pilot-lost"}))["status"])
    assert statuses == ["waiting", "waiting", "failed"]
