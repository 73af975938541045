"""/actions/*: up-front validation (400 and nothing queued), the message life
cycle through the real action worker, and each action's effect."""
from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from common.config import fill_defaults
from server.scheduling import action_worker
from server.scheduling.materialize import materialize
from server.store import TaskFilter, open_store
from tests.server.conftest import start_server
from tests.server.user_api_helpers import CONFIG, call, config, create_dataset, run_actions

pytestmark = pytest.mark.asyncio


def submit_body(cfg=None, jobs=4, **extra):
    return {"config": json.dumps(cfg or CONFIG), "description": "from submit", "jobs_submitted": jobs, **extra}


async def _queued_total(server, action):
    return sum((await server.store.action_counts(action)).values())


async def test_submit_life_cycle_creates_dataset_config_and_jobs(server):
    token = server.token("alice")
    rc = server.rest(token)
    status, body, _ = await call(server, "POST", "/actions/submit", token,
                                 body=submit_body(extra_submit_fields='{"priority": 0.8}'))
    assert status == 201
    message_id = body["result"]
    queued = await rc.request("GET", f"/actions/submit/{message_id}")
    assert queued["status"] == "queued" and queued["error_message"] == "" and queued["id"] == message_id
    assert await run_actions(server) == 2  # the submit, then the materialization it asked for
    done = await rc.request("GET", f"/actions/submit/{message_id}")
    assert done["status"] == "complete"
    dataset_id = done["payload"]["dataset_id"]
    dataset = await rc.request("GET", f"/datasets/{dataset_id}")
    assert (dataset["username"], dataset["tasks_per_job"], dataset["priority"]) == ("alice", 3, 0.8)
    versions = (await rc.request("GET", f"/config/{dataset_id}/versions"))["versions"]
    assert [(v["version"], v["author"]) for v in versions] == [(1, "alice")]
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"processing": 4}
    counts = await rc.request("GET", "/actions/submit")
    assert counts == {"queued": 0, "processing": 0, "error": 0, "complete": 1}
    latest = await rc.request("GET", f"/actions/materialization/datasets/{dataset_id}")
    assert latest["status"] == "complete"


@pytest.mark.parametrize("body, code, text", [
    ({"description": "x", "jobs_submitted": 1}, 400, "missing key: config"),
    (submit_body(colour="red"), 400, "invalid keys found: colour"),
    (submit_body(jobs=0), 400, "jobs_submitted"),
    (submit_body(jobs="ten"), 400, "jobs_submitted"),
    (submit_body(jobs=10**40), 400, "jobs_submitted"),
    ({**submit_body(), "config": "{not json"}, 400, "not valid JSON"),
    ({**submit_body(), "config": "[1]"}, 400, "JSON object"),
    (submit_body(cfg=config(tasks=[{"name": "a", "trays": []}])), 400, "Validation error in config['tasks'][0]"),
    (submit_body(cfg=config(tasks=[{"name": "a", "depends": ["b"], "trays": [{"modules": [{"src": "a.py"}]}]}])),
     400, "depends on unknown task"),
    (submit_body(cfg=config(tasks=[{"name": "a", "trays": [{"modules": [{"src": "$(nothing).py"}]}]}])),
     400, "nothing"),
    (submit_body(username="bob"), 403, "only admins"),
    (submit_body(group="simprod"), 403, "not one of your groups"),
    (submit_body(extra_submit_fields='{"status": "asleep"}'), 400, "asleep"),
    (submit_body(extra_submit_fields='{"owner": "x"}'), 400, "invalid keys found: owner"),
])
async def test_submit_bad_payload_is_rejected_and_nothing_queued(server, body, code, text):
    status, reply, _ = await call(server, "POST", "/actions/submit", server.token("alice"), body=body)
    assert status == code and text in reply["error"], reply
    assert await _queued_total(server, "submit") == 0
    assert (await server.store.list_datasets()).rows == []


async def test_submit_reports_every_problem_at_once(server):
    cfg = config(tasks=[{"name": "a", "trays": [{"modules": [{"src": "$(x).py", "args": "$(y)"}]}]}])
    status, reply, _ = await call(server, "POST", "/actions/submit", server.token("alice"), body=submit_body(cfg=cfg))
    assert status == 400 and "x" in reply["error"] and "y" in reply["error"] and reply["error"].count("\n") >= 1


async def test_admin_submits_for_another_user_with_extra_fields(server):
    admin = server.token("root", "admin", ["admin"])
    status, body, _ = await call(server, "POST", "/actions/submit", admin,
                                 body=submit_body(username="bob", group="simprod",
                                                  extra_submit_fields='{"status": "suspended"}'))
    assert status == 201
    await run_actions(server)
    message = await server.store.get_action(body["result"])
    dataset = await server.store.get_dataset(message.payload["dataset_id"])
    assert (dataset.username, dataset.group, dataset.status) == ("bob", "simprod", "suspended")
    # Its jobs are materialized (IceProd's basic_submit adds files to them before
    # starting the dataset), but nothing is released while it is suspended.
    assert await server.store.max_job_index(dataset.dataset_id) == dataset.jobs_submitted - 1
    assert await server.store.release_dependencies(dataset_id=dataset.dataset_id) == 0


async def test_unknown_action_and_message(server):
    token = server.token("alice")
    status, reply, _ = await call(server, "POST", "/actions/explode", token, body={})
    assert status == 404 and "explode" in reply["error"]
    status, _, _ = await call(server, "GET", "/actions/submit/" + "0" * 32, token)
    assert status == 404


async def test_edit_config_keeps_versions_and_updates_requirements_with_macros(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=2)
    edited = config(steering={"parameters": {"mem": 3}})
    edited["tasks"][2]["requirements"] = {"memory": "$eval($(mem) + 1)"}
    status, body, _ = await call(server, "POST", "/actions/edit_config", token,
                                 body={"dataset_id": dataset_id, "config": json.dumps(edited),
                                       "description": "more memory", "comment": "detector needs more"})
    assert status == 201, body
    await run_actions(server)
    message = await server.store.get_action(body["result"])
    assert message.status == "complete", message.error_message
    assert message.payload["config_version"] == 2 and "detect" in message.payload["requirements_updated"]
    page = await server.store.list_tasks(TaskFilter(dataset_id=dataset_id, name=["detect"]))
    assert {row["requirements"]["memory"] for row in page.rows} == {4}
    versions = await server.store.list_config_versions(dataset_id)
    assert [v.comment for v in versions] == ["", "detector needs more"]
    assert (await server.store.get_dataset(dataset_id)).description == "more memory"


async def test_edit_config_refuses_changed_task_names_and_strangers(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=1, materialized=False)
    renamed = config()
    renamed["tasks"][0]["name"] = "gen"
    renamed["tasks"][1]["depends"] = ["gen"]
    status, reply, _ = await call(server, "POST", "/actions/edit_config", token,
                                  body={"dataset_id": dataset_id, "config": json.dumps(renamed)})
    assert status == 400 and "keep its name" in reply["error"]
    status, reply, _ = await call(server, "POST", "/actions/edit_config", server.token("bob"),
                                  body={"dataset_id": dataset_id, "config": json.dumps(CONFIG)})
    assert status == 403
    assert await _queued_total(server, "edit_config") == 0


async def test_materialization_dedupes_and_respects_truncate(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=10, materialized=False)
    rc = server.rest(token)
    first = await rc.request("POST", f"/actions/materialization/datasets/{dataset_id}", {"num": 3})
    second = await rc.request("POST", "/actions/materialization", {"dataset_id": dataset_id, "num": 3})
    assert first == second  # one request per dataset while queued
    await run_actions(server)
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"processing": 3}
    await rc.request("POST", f"/datasets/{dataset_id}/dataset_actions/truncate")
    await rc.request("POST", "/actions/materialization", {"dataset_id": dataset_id})
    await run_actions(server)
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"processing": 3}
    status, reply, _ = await call(server, "POST", "/actions/materialization", token,
                                  body={"dataset_id": dataset_id, "num": -1})
    assert status == 400 and "num" in reply["error"]


async def test_status_actions_suspend_reset_hard_reset(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=3)
    rc = server.rest(token)
    tasks = await rc.request("GET", f"/datasets/{dataset_id}/tasks", {"job_index": 0})
    await server.store.bulk_task_status("complete", task_ids=list(tasks), force=True)
    await server.store.rollup_jobs([t["job_id"] for t in tasks.values()])

    await rc.request("POST", "/actions/dataset_status", {"dataset_id": dataset_id, "action": "suspend"})
    await run_actions(server)
    assert (await rc.request("GET", f"/datasets/{dataset_id}"))["status"] == "suspended"
    assert await rc.request("GET", f"/datasets/{dataset_id}/task_counts/status") == {"suspended": 6, "complete": 3}

    reply = await rc.request("POST", "/actions/task_status",
                             {"dataset_id": dataset_id, "action": "reset", "initial_status": "suspended"})
    await run_actions(server)
    message = await rc.request("GET", f"/actions/task_status/{reply['result']}")
    assert message["status"] == "complete" and message["payload"]["progress"] == 100
    assert await rc.request("GET", f"/datasets/{dataset_id}/task_counts/status") == {"idle": 6, "complete": 3}
    assert (await rc.request("GET", f"/datasets/{dataset_id}"))["status"] == "processing"

    job0 = next(iter(tasks.values()))["job_id"]
    await rc.request("POST", "/actions/job_status", {"dataset_id": dataset_id, "action": "hard_reset",
                                                     "job_ids": [job0]})
    await run_actions(server)
    assert await rc.request("GET", f"/datasets/{dataset_id}/task_counts/status") == {"idle": 9}
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"processing": 3}


@pytest.mark.parametrize("body, text", [
    ({"dataset_id": "x", "action": "explode"}, "invalid action"),
    ({"dataset_id": "x", "action": "reset", "job_ids": ["a"], "task_ids": ["b"]}, "cannot define both"),
    ({"dataset_id": "x", "action": "reset", "initial_status": "sleeping"}, "initial_status"),
    ({"dataset_id": "x", "action": "reset", "job_ids": "a"}, "job_ids"),
    ({"action": "reset"}, "missing key: dataset_id"),
])
async def test_status_action_bad_payloads(server, body, text):
    status, reply, _ = await call(server, "POST", "/actions/job_status", server.token("alice"), body=body)
    assert status == 400 and text in reply["error"], reply
    assert await _queued_total(server, "job_status") == 0


async def test_failing_action_ends_in_error_with_its_reason(server):
    token = server.token("alice")
    rc = server.rest(token)
    reply = await rc.request("POST", "/datasets", {"description": "d", "jobs_submitted": 1, "tasks_submitted": 2,
                                                   "tasks_per_job": 2, "group": "users"})
    dataset_id = reply["result"]
    await rc.request("PUT", f"/config/{dataset_id}", CONFIG)  # 3 tasks, but tasks_per_job is 2
    message_id = (await rc.request("POST", "/actions/materialization", {"dataset_id": dataset_id}))["result"]
    await run_actions(server)
    message = await rc.request("GET", f"/actions/materialization/{message_id}")
    assert message["status"] == "error" and "tasks_per_job=2" in message["error_message"]
    assert await rc.request("GET", "/actions/materialization") == {"queued": 0, "processing": 0, "error": 1,
                                                                   "complete": 0}


async def test_worker_service_runs_posted_actions(server_settings, tmp_path):
    settings = dataclasses.replace(server_settings, loops=True)
    store = await open_store(settings.db)
    runner, running = await start_server(settings, store, services=(action_worker.service,))
    try:
        rc = running.rest(running.token("alice"))
        message_id = (await rc.request("POST", "/actions/submit", submit_body(jobs=2)))["result"]
        for _ in range(200):
            message = await rc.request("GET", f"/actions/submit/{message_id}")
            if message["status"] == "complete":
                break
            await asyncio.sleep(0.05)
        assert message["status"] == "complete"
        assert (await store.get_dataset(message["payload"]["dataset_id"])).jobs_submitted == 2
    finally:
        for client in running.clients:
            client.close()
        await runner.cleanup()
        await store.close()


async def test_edit_config_with_per_job_requirements_lists_them(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=3)
    edited = config()
    edited["tasks"][0]["requirements"] = {"memory": "$eval($(job) + 1)"}
    reply = await server.rest(token).request("POST", "/actions/edit_config",
                                             {"dataset_id": dataset_id, "config": json.dumps(edited)})
    await run_actions(server)
    message = await server.store.get_action(reply["result"])
    assert message.status == "complete" and message.payload["requirements_per_job"] == ["generate"]
    page = await server.store.list_tasks(TaskFilter(dataset_id=dataset_id, name=["generate"]))
    assert {row["requirements"]["memory"] for row in page.rows} == {2.0}  # existing jobs keep theirs
    await server.store.set_jobs_submitted(dataset_id, 4)
    await materialize(server.store, server.settings, dataset_id, 1)
    page = await server.store.list_tasks(TaskFilter(dataset_id=dataset_id, name=["generate"], job_index=3))
    assert page.rows[0]["requirements"]["memory"] == 4 and page.rows[0]["config_version"] == 2


async def test_every_write_path_stores_the_config_filled_once(server):
    """submit, edit_config and PUT /config fill the defaults at the door; the
    stored version is the filled one, so materialization and the pilot read it
    as it is. The action message already carries the filled config."""
    token = server.token("alice")
    filled = fill_defaults(CONFIG)
    assert filled != CONFIG  # the defaults add something to fill
    status, body, _ = await call(server, "POST", "/actions/submit", token, body=submit_body(jobs=1))
    assert status == 201, body
    assert json.loads((await server.store.get_action(body["result"])).payload["config"]) == filled
    await run_actions(server)
    dataset_id = (await server.store.get_action(body["result"])).payload["dataset_id"]
    assert (await server.store.get_config(dataset_id)).config == filled

    status, body, _ = await call(server, "POST", "/actions/edit_config", token,
                                 body={"dataset_id": dataset_id, "config": json.dumps(CONFIG)})
    assert status == 201, body
    await run_actions(server)
    assert (await server.store.get_config(dataset_id, 2)).config == filled

    status, body, _ = await call(server, "PUT", f"/config/{dataset_id}", token, body=CONFIG)
    assert status == 200, body
    assert (await server.store.get_config(dataset_id, 3)).config == filled
    status, body, _ = await call(server, "GET", f"/config/{dataset_id}", token)
    assert body == filled


def _v31(task: dict) -> dict:
    return {"version": 3.1, "tasks": [{"name": "a", "trays": [{"modules": [{"src": "a.py"}]}], **task}]}


@pytest.mark.parametrize("task, message", [
    # IceProd 3.2's three verified messages: submit converts 3.1 to 3.2 first, as IceProd's does.
    ({"data": [{"type": "permanent", "local": "f"}]},
     "Validation error in config['tasks'][0]['data'][0]['remote']: '' is too short"),
    ({"data": [{"type": "job_temp", "remote": "gsiftp://x/y/f", "local": "f"}]},
     "Validation error in config['tasks'][0]['data'][0]['remote']: remote should be empty when type is temporary"),
    ({"task_files": True},
     "Validation error in config['tasks'][0]['token_scopes']: token_scopes are required when task_files=true"),
])
async def test_a_31_config_is_validated_with_32s_rules_at_submit(server, task, message):
    status, reply, _ = await call(server, "POST", "/actions/submit", server.token("alice"),
                                  body=submit_body(cfg=_v31(task), jobs=1))
    assert status == 400 and message in reply["error"], reply
    assert await _queued_total(server, "submit") == 0


async def test_keys_32_no_longer_has_are_dropped_with_a_warning_and_32_is_stored(server):
    token = server.token("alice")
    cfg = {"version": 3.1, "tasks": [{"name": "a", "trays": [{"projects": ["simprod"], "modules": [
        {"src": "/opt/sim/a.py", "projects": ["icetray"]}]}]}]}
    status, body, _ = await call(server, "POST", "/actions/submit", token, body=submit_body(cfg=cfg, jobs=1))
    assert status == 201, body
    await run_actions(server)
    done = await server.rest(token).request("GET", f"/actions/submit/{body['result']}")
    assert done["status"] == "complete"
    assert done["payload"]["config_warnings"] == [
        "Warning: config['tasks'][0]['trays'][0]['projects']: dropped 'projects': config version 3.2 has no such "
        "key here (converted from version 3.1 to 3.2)",
        "Warning: config['tasks'][0]['trays'][0]['modules'][0]['projects']: dropped 'projects': config version "
        "3.2 has no such key here (converted from version 3.1 to 3.2)"]
    stored = await server.rest(token).request("GET", f"/config/{done['payload']['dataset_id']}")
    assert stored["version"] == 3.2 and "projects" not in json.dumps(stored)
    # A 3.2 config keeps refusing unknown keys, as IceProd's 3.2 does.
    cfg32 = {**cfg, "version": 3.2}
    status, reply, _ = await call(server, "POST", "/actions/submit", token, body=submit_body(cfg=cfg32, jobs=1))
    assert status == 400 and "Additional properties are not allowed ('projects' was unexpected)" in reply["error"]
