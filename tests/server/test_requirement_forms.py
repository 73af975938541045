"""Every accepted form of a task requirement, through the one parser, the real
submit path and a real claim: the server and the pilot size the task the same.

Each good form is submitted in a config (``POST /actions/submit``, run by the
action worker, materialized into the SQLite store) or, for the forms only the
API takes (a config's schema wants integers for cpu/gpu), set with
``bulk_requirements``. Then a pilot that lacks a little of any one resource
gets nothing, a pilot with exactly the size gets the task, and the pilot's
reading of the claim reply (``pilot.attempt.claim_from``) equals the
server's (``server.store.rules.task_shape``) and the parser's.
Bad forms fail with an error naming the field, wherever they enter.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from common.config import check_config
from common.resources import (
    RESOURCE_NAMES, RequirementError, Resources, is_macro, parse_requirement, parse_requirements,
)
from pilot.attempt import claim_from
from server.auth import default_rights
from server.store import InvalidArgumentError, ListOptions, NewDataset, NewJob, NewTask, TaskFilter
from server.store.rules import task_shape
from tests.server.user_api_helpers import call, run_actions

pytestmark = pytest.mark.asyncio

GiB = 1024**3 / 1e9
DEFAULT = Resources()
PILOT_TOTAL = {"cpu": 64, "gpu": 4, "memory": 512.0, "disk": 2000.0, "time": 1000.0}

# (how it enters, requirements, the size every reader must agree on)
GOOD_FORMS: list[tuple[str, dict[str, Any], Resources]] = [
    ("config", {}, DEFAULT),
    ("config", {"cpu": 4}, replace(DEFAULT, cpu=4)),
    ("config", {"gpu": 2}, replace(DEFAULT, gpu=2)),
    ("config", {"memory": 3}, replace(DEFAULT, memory=3.0)),
    ("config", {"memory": 2.5, "disk": 0.25, "time": 0.5}, replace(DEFAULT, memory=2.5, disk=0.25, time=0.5)),
    ("config", {"memory": "4GB"}, replace(DEFAULT, memory=4.0)),
    ("config", {"memory": "512MB"}, replace(DEFAULT, memory=0.512)),
    ("config", {"memory": "2G", "disk": "1TB"}, replace(DEFAULT, memory=2.0, disk=1000.0)),
    ("config", {"memory": "1GiB"}, replace(DEFAULT, memory=GiB)),
    ("config", {"memory": "6"}, replace(DEFAULT, memory=6.0)),
    ("config", {"disk": "20 GB"}, replace(DEFAULT, disk=20.0)),
    ("config", {"time": "90m"}, replace(DEFAULT, time=1.5)),
    ("config", {"time": "1h30m"}, replace(DEFAULT, time=1.5)),
    ("config", {"time": "3600s"}, replace(DEFAULT, time=1.0)),
    ("config", {"time": "1d"}, replace(DEFAULT, time=24.0)),
    ("config", {"time": "2.5"}, replace(DEFAULT, time=2.5)),
    ("config", {"memory": ""}, DEFAULT),
    ("config", {"memory": "$eval(3 + $(job))"}, replace(DEFAULT, memory=3.0)),
    ("config", {"memory": "$steering(mem)", "time": "${hours}"}, replace(DEFAULT, memory=1.5, time=2.0)),
    ("config", {"cpu": 2, "os": ["RHEL_7_x86_64"], "site": "test-site"}, replace(DEFAULT, cpu=2)),
    ("api", {"cpu": "3"}, replace(DEFAULT, cpu=3)),
    ("api", {"cpu": 2.0}, replace(DEFAULT, cpu=2)),
    ("api", {"gpu": ["0", "1"]}, replace(DEFAULT, gpu=2)),
    ("api", {"gpu": [0]}, replace(DEFAULT, gpu=1)),
    ("api", {"gpu": "1"}, replace(DEFAULT, gpu=1)),
    ("api", {"memory": None}, DEFAULT),
]


def _id(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)[:12]


def _config(requirements: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3.2,
            "steering": {"parameters": {"mem": "1500MB"}},
            "tasks": [{"name": "t", "parameters": {"hours": "2h"}, "requirements": requirements,
                       "trays": [{"modules": [{"src": "run.py"}]}]}]}


async def _submit(server, token: str, requirements: dict[str, Any]) -> str:
    body = {"config": json.dumps(_config(requirements)), "description": "forms", "jobs_submitted": 1}
    status, reply, _ = await call(server, "POST", "/actions/submit", token, body=body)
    assert status == 201, reply
    assert await run_actions(server) == 2  # the submit and its materialization
    page = await server.store.list_tasks(TaskFilter(), ListOptions())
    return page.rows[-1]["dataset_id"]


async def _empty_dataset(server) -> str:
    dataset = await server.store.create_dataset(NewDataset(description="forms", jobs_submitted=1, tasks_per_job=1,
                                                           group="users", username="alice"))
    await server.store.set_dataset_rights(dataset.dataset_id, default_rights("alice", "users"))
    await server.store.add_config_version(dataset.dataset_id, _config({}), "alice")
    return dataset.dataset_id


async def _claim(server, token: str, pilot_id: str, free: dict[str, Any]) -> tuple[int, Any]:
    body = {"pilot_id": pilot_id, "resources": free, "site": "test-site", "os": ["RHEL_7_x86_64"]}
    status, reply, _ = await call(server, "POST", "/task_actions/process", token, body=body)
    return status, reply


@pytest.mark.parametrize(("route", "requirements", "size"), GOOD_FORMS, ids=_id)
async def test_every_form_sizes_the_task_the_same_on_server_and_pilot(server, route: str,
                                                                      requirements: dict[str, Any],
                                                                      size: Resources) -> None:
    token = server.token("alice")
    if route == "config":
        assert check_config(_config(requirements)) == []
        dataset_id = await _submit(server, token, requirements)
    else:  # forms a config's schema refuses for cpu/gpu, which IceProd's POST /tasks takes
        dataset_id = await _empty_dataset(server)
        body = {"dataset_id": dataset_id, "job_id": "a" * 32, "job_index": 0, "task_index": 0, "name": "t",
                "depends": [], "requirements": requirements}
        status, reply, _ = await call(server, "POST", "/tasks", server.token("root", role="admin"), body=body)
        assert status == 201, reply
    if not any(is_macro(v) for v in requirements.values()):
        assert Resources.from_requirements(requirements) == size  # the one parser, on its own
    await server.store.release_dependencies(dataset_id=dataset_id)
    await server.store.queue_tasks(100, dataset_id=dataset_id)

    [task] = (await server.store.list_tasks(TaskFilter(dataset_id=dataset_id), ListOptions())).rows
    stored = task["requirements"]
    assert all(isinstance(stored[k], (int, float)) for k in RESOURCE_NAMES if k in stored)  # numbers, not forms
    assert task_shape(stored).need == size

    system = server.token("pilot-1", role="pilot")
    pilot = (await server.rest(system).request("POST", "/pilots", {"resources": PILOT_TOTAL, "site": "test-site",
                                                                  "hostname": "node1"}))["result"]
    exact = {**size.as_dict(), "time": size.time}
    for name in RESOURCE_NAMES:
        value = exact[name]
        if value > 0:
            short = {**exact, name: value - 1 if name in ("cpu", "gpu") else round(value * 0.99, 9)}
            status, _ = await _claim(server, system, pilot, short)
            assert status == 404, f"claimed with too little {name}: {short}"
    status, doc = await _claim(server, system, pilot, exact)
    assert status == 200, doc
    pilot_view = claim_from(doc)
    assert not pilot_view.problem
    assert pilot_view.requirements == size


BAD_FORMS: list[tuple[dict[str, Any], str, str]] = [
    ({"cpu": 0}, "cpu", "must be at least 1"),
    ({"cpu": 1.5}, "cpu", "expected a whole number"),
    ({"gpu": -1}, "gpu", "expected a whole number >= 0"),
    ({"gpu": ["0", "0"]}, "gpu", "must not repeat an id"),
    ({"gpu": [1.5]}, "gpu", "must hold GPU ids"),
    ({"memory": 0}, "memory", "must be greater than 0 (GB)"),
    ({"memory": -2}, "memory", "must be greater than 0 (GB)"),
    ({"memory": "lots"}, "memory", "cannot read size 'lots'"),
    ({"memory": "4XB"}, "memory", "cannot read size '4XB'"),
    ({"disk": True}, "disk", "expected a number"),
    ({"disk": [4]}, "disk", "expected a size"),
    ({"time": "2 fortnights"}, "time", "unknown unit 'fortnights'"),
    ({"time": "1h30"}, "time", "every part of a compound duration needs a unit"),
    ({"time": "0s"}, "time", "must be greater than 0 (hours)"),
    ({"memory": "$eval(1+1)"}, "memory", "still holds a macro"),
    ({"os": [7]}, "os", "must be a list of strings"),
    ({"site": 3}, "site", "must be a string"),
]


@pytest.mark.parametrize(("requirements", "key", "message"), BAD_FORMS, ids=_id)
async def test_bad_forms_name_the_field_wherever_they_enter(server, requirements: dict[str, Any], key: str,
                                                            message: str) -> None:
    with pytest.raises(RequirementError, match=f"^requirements.{key}: .*{_re(message)}") as err:
        parse_requirements(requirements)
    assert err.value.key == key
    if key in RESOURCE_NAMES:
        with pytest.raises(RequirementError, match=_re(message)):
            parse_requirement(key, requirements[key])
    # The store (the claim's shape) refuses it, naming the field.
    dataset_id = await _empty_dataset(server)
    with pytest.raises(InvalidArgumentError, match=f"requirements.{key}: .*{_re(message)}"):
        await server.store.create_jobs(dataset_id, [NewJob(job_index=0, tasks=[NewTask("t", 0, dict(requirements))])])
    # So does the API, with a 400 that names it (IceProd's POST /tasks takes any object).
    body = {"dataset_id": dataset_id, "job_id": "a" * 32, "job_index": 0, "task_index": 0, "name": "t",
            "depends": [], "requirements": requirements}
    status, reply, _ = await call(server, "POST", "/tasks", server.token("root", role="admin"), body=body)
    assert status == 400 and f"requirements.{key}" in reply["error"], reply
    # A pilot never runs a task it cannot size: the claim holds nothing and says why
    # (os and site are the server's to match; the pilot sizes by the five resources).
    claim = claim_from({"task_id": "x", "instance_id": "y", "dataset_id": dataset_id, "job_id": "j",
                        "job_index": 0, "name": "t", "task_index": 0, "config_version": None,
                        "requirements": requirements})
    if key in RESOURCE_NAMES:
        assert f"requirements.{key}" in claim.problem and claim.requirements.cpu == 0
    else:
        assert not claim.problem
    # A config with a macro-free bad value is refused at submit, at its path.
    if key in ("memory", "disk", "time") and isinstance(requirements[key], (int, float, str)) \
            and not isinstance(requirements[key], bool) and "$" not in str(requirements[key]):
        problems = check_config(_config(requirements))
        assert [(p.path, p.message.split(": ")[0]) for p in problems] == \
            [(f"config['tasks'][0]['requirements'][{key!r}]", key)]


def _re(text: str) -> str:
    return "".join("\\" + c if c in "()[].*+?^$|{}\\" else c for c in text)
