"""Every route × every kind of caller: rights are enforced as each route declares.

The expectations come from the route declarations themselves (roles, dataset
right, pilot routes), and the calls go to the real server; so a route that
forgets a check, or a declaration that promises one the server does not
make, fails here. Bodies are empty objects: authorization is decided before
the body is read, so nothing is changed by an allowed call either.
"""
from __future__ import annotations

import re

import aiohttp
import pytest

from server.api.routing import ANONYMOUS
from server.keys import ROUTE_SPECS
from server.store import DatasetRights, JobFilter, NewDataset, NewJob, NewLog, NewPilot, NewTask, TaskFilter

CALLERS = ("anonymous", "other user", "owner", "group member", "admin", "system", "pilot")


def expected_allowed(spec, caller: str) -> bool:
    if ANONYMOUS in spec.roles:
        return True
    if caller == "anonymous":
        return False
    if caller == "pilot":
        return spec.pilot and "pilot" in spec.roles
    if caller in ("admin", "system"):  # both bypass dataset rights (IceProd's attr_auth)
        return caller in spec.roles
    if "user" not in spec.roles:
        return False
    if spec.tag in ("credentials", "alerts"):
        # a user's own (or own groups') credentials and alerts only; the path names "nonexistent"
        return False
    if spec.right is None:
        return True
    if caller == "owner":
        return True
    if caller == "group member":  # member of the owning group "simprod": may read and write
        return True
    return False  # "other user": in no group that may read this dataset


@pytest.fixture
async def world(server):
    store = server.store
    dataset = await store.create_dataset(NewDataset(description="d", jobs_submitted=1, tasks_submitted=1,
                                                    tasks_per_job=1, group="simprod", username="owner"))
    await store.set_dataset_rights(dataset.dataset_id, DatasetRights(
        read_groups=["admin", "simprod"], write_groups=["admin", "simprod"], read_users=["owner"],
        write_users=["owner"]))
    await store.add_config_version(dataset.dataset_id, {"version": 3.2, "tasks": [
        {"name": "a", "trays": [{"modules": [{"src": "x.py"}]}]}]}, "owner")
    await store.create_jobs(dataset.dataset_id, [NewJob(job_index=0, tasks=[NewTask(name="a", task_index=0)])])
    tokens = {
        "other user": server.token("mallory", groups=("outsiders",)),
        "owner": server.token("owner", groups=("users",)),
        "group member": server.token("bob", groups=("simprod",)),
        "admin": server.token("root", role="admin", groups=("admin",)),
        "system": server.token("cron", role="system", groups=()),
        "pilot": server.token("pilot-1", role="pilot", groups=()),
    }
    return dataset.dataset_id, tokens


def concrete(path: str, dataset_id: str) -> str:
    path = path.replace("{dataset_id}", dataset_id)
    return re.sub(r"{[^}]+}", "nonexistent", path)


async def test_every_route_for_every_caller(server, world):
    dataset_id, tokens = world
    specs = [s for s in server.app[ROUTE_SPECS] if s.path.startswith("/") and s.tag != "web"]
    assert len(specs) > 60, "the matrix must cover the whole API"
    mismatches = []
    async with aiohttp.ClientSession() as session:
        for spec in specs:
            url = server.url + concrete(spec.path, dataset_id)
            for caller in CALLERS:
                headers = {"Authorization": f"Bearer {tokens[caller]}"} if caller in tokens else {}
                kwargs = {"json": {}} if spec.method in {"POST", "PUT", "PATCH"} else {}
                async with session.request(spec.method, url, headers=headers, **kwargs) as response:
                    status = response.status
                    await response.read()
                allowed = expected_allowed(spec, caller)
                denied_status = 401 if caller == "anonymous" else 403
                if allowed and status in (401, 403) or not allowed and status != denied_status:
                    mismatches.append(f"{spec.method} {spec.path} as {caller}: {status} "
                                      f"(expected {'allowed' if allowed else denied_status})")
                assert status < 500, f"{spec.method} {spec.path} as {caller}: {status}"
    assert not mismatches, "\n".join(mismatches)


# ---- every GET route that takes an id, with REAL ids of the owner's data ----

def takes_id(spec) -> bool:
    return spec.method == "GET" and "{" in spec.path


def id_expectation(spec, caller: str) -> bool:
    """May a stranger / a member of the owning group read this route's data?
    From the declaration: roles, pilot, dataset right or owner."""
    if ANONYMOUS in spec.roles:
        return True
    if "user" not in spec.roles:
        return False  # admin-only (or pilot-only) routes
    if spec.right is not None:
        return caller == "group member"
    if spec.owner == "anyone":  # declared to hold no user's data (counts over everyone's)
        return True
    if spec.owner == "user":  # the path names the owner: only they (and admins) read it
        return False
    if spec.owner in ("group", "action"):  # the owning group's members read it
        return caller == "group member"
    raise AssertionError(f"{spec.path}: a user route that takes an id must declare a dataset right or an owner")


@pytest.fixture
async def real_ids(server, world):
    dataset_id, tokens = world
    store = server.store
    jobs = await store.list_jobs(JobFilter(dataset_id=dataset_id))
    job_id = jobs.rows[0]["job_id"]
    task = (await store.list_tasks(TaskFilter(dataset_id=dataset_id))).rows[0]
    task_stat_id = await store.add_task_stat(task["task_id"], dataset_id, {"cpu": 1})
    log_id = await store.add_log(NewLog(name="stdout", data="hello", dataset_id=dataset_id, task_id=task["task_id"]))
    pilot_id = await store.register_pilot(NewPilot(resources={"cpu": 1}))
    [sha512] = await store.put_source_blobs([b"print('x')\n"])  # the config's x.py, carried at submit
    await store.set_config_sources(dataset_id, 1, {"x.py": sha512})
    # a submit by the owner for the group (its dataset not made yet): it carries the config
    message = await store.add_action("submit", {"config": "{}", "username": "owner", "group": "simprod",
                                                "requested_by": "owner"})
    await store.add_action("materialization", {"dataset_id": dataset_id, "num": 1}, dataset_id=dataset_id)
    async with aiohttp.ClientSession() as session:  # a real scratch file of the dataset
        async with session.put(f"{server.url}/scratch/{dataset_id}/out.txt", data=b"result",
                               headers={"Authorization": f"Bearer {tokens['owner']}"}) as response:
            assert response.status in (200, 201), await response.text()
    return {"path": "out.txt", "dataset_id": dataset_id, "job_id": job_id, "task_id": task["task_id"], "task_stat_id": task_stat_id,
            "log_id": log_id, "pilot_id": pilot_id, "message_id": message.message_id, "action": "submit",
            "username": "owner", "group_name": "simprod", "task_name": "a", "sha512": sha512}, tokens


async def test_every_id_route_with_real_ids(server, real_ids):
    """A stranger is refused on every GET route that takes an id, even with the
    real ids of someone else's data; a member of the owning group reads it."""
    ids, tokens = real_ids
    specs = [s for s in server.app[ROUTE_SPECS] if takes_id(s) and s.tag != "web"]
    assert len(specs) > 20
    mismatches = []
    async with aiohttp.ClientSession() as session:
        for spec in specs:
            names = re.findall(r"{(\w+)(?::[^}]*)?}", spec.path)
            missing = [n for n in names if n not in ids]
            assert not missing, f"{spec.path}: the test has no real value for {missing}"
            path = re.sub(r"{(\w+)(?::[^}]*)?}", lambda m: ids[m.group(1)], spec.path)
            for caller in ("other user", "group member"):
                async with session.get(server.url + path, headers={"Authorization": f"Bearer {tokens[caller]}"}) as r:
                    status = r.status
                    body = await r.text()
                if id_expectation(spec, caller):
                    if status != 200:
                        mismatches.append(f"GET {path} as {caller}: {status} (expected 200) {body[:200]}")
                elif status != 403:
                    mismatches.append(f"GET {path} as {caller}: {status} (expected 403)")
                if status == 403:
                    assert "owner" not in body and "simprod" not in body, f"{path} leaks data in its refusal"
    assert not mismatches, "\n".join(mismatches)


async def test_action_status_is_the_requesters(server, real_ids, rest):
    """GET /actions/submit/{id}: the submitted config, user name and group are
    the requester's (and their group's), never a stranger's."""
    ids, tokens = real_ids
    path = f"/actions/submit/{ids['message_id']}"
    reply = await rest(server.token("owner", groups=("users",))).request("GET", path)
    assert reply["payload"]["username"] == "owner"
    with pytest.raises(Exception) as refused:
        await rest(tokens["other user"]).request("GET", path)
    assert refused.value.response.status_code == 403
    assert (await rest(tokens["admin"]).request("GET", path))["id"] == ids["message_id"]


# IceProd's roles per route (reference §4.3-§4.5, its handlers' roles=[...]): A admin,
# U user, S system. Written out here, not read from frazil, so a route that drifts
# from IceProd fails. frazil-only routes (pilots, scratch, attempts, ...) are absent.
ICEPROD_ROLES = {
    "GET /roles": "A", "GET /groups": "AS", "GET /users": "AS", "GET /users/{username}": "AS",
    "PUT /users/{username}": "A", "DELETE /users/{username}": "A", "PUT /users/{username}/priority": "A",
    "POST /auths": "AS",
    "GET /config/{dataset_id}": "AUS", "PUT /config/{dataset_id}": "AUS",
    "GET /datasets": "AUS", "POST /datasets": "AUS", "GET /datasets/{dataset_id}": "AUS",
    "PUT /datasets/{dataset_id}/description": "AUS", "PUT /datasets/{dataset_id}/status": "AUS",
    "PUT /datasets/{dataset_id}/priority": "AUS", "PUT /datasets/{dataset_id}/jobs_submitted": "AU",
    "POST /datasets/{dataset_id}/dataset_actions/hard_reset": "AUS",
    "POST /datasets/{dataset_id}/dataset_actions/truncate": "AUS", "GET /dataset_summaries/status": "AUS",
    "POST /jobs": "AS", "GET /jobs/{job_id}": "AS", "PATCH /jobs/{job_id}": "AS",
    "GET /datasets/{dataset_id}/jobs": "AUS", "GET /datasets/{dataset_id}/jobs/{job_id}": "AUS",
    "PUT /datasets/{dataset_id}/jobs/{job_id}/status": "AUS",
    "POST /datasets/{dataset_id}/job_actions/bulk_status/{status}": "AUS",
    "POST /datasets/{dataset_id}/job_actions/bulk_suspend": "AUS",
    "POST /datasets/{dataset_id}/job_actions/bulk_reset": "AUS",
    "POST /datasets/{dataset_id}/job_actions/bulk_hard_reset": "AUS",
    "GET /datasets/{dataset_id}/job_summaries/status": "AUS", "GET /datasets/{dataset_id}/job_counts/status": "AUS",
    "GET /tasks": "AS", "POST /tasks": "AS", "GET /tasks/{task_id}": "AS", "PATCH /tasks/{task_id}": "AS",
    "PUT /tasks/{task_id}/status": "AS", "POST /task_actions/bulk_status/{status}": "AS",
    "POST /task_actions/waiting": "AS", "POST /task_actions/queue": "AS", "POST /task_actions/queue_many": "AS",
    "GET /task_counts/status": "AS",
    "POST /tasks/{task_id}/task_actions/processing": "AS", "POST /tasks/{task_id}/task_actions/reset": "AS",
    "POST /tasks/{task_id}/task_actions/failed": "AS", "POST /tasks/{task_id}/task_actions/complete": "AS",
    "GET /datasets/{dataset_id}/tasks": "AUS", "GET /datasets/{dataset_id}/tasks/{task_id}": "AUS",
    "PUT /datasets/{dataset_id}/tasks/{task_id}/status": "AUS",
    "GET /datasets/{dataset_id}/task_summaries/status": "AUS",
    "GET /datasets/{dataset_id}/task_counts/status": "AUS", "GET /datasets/{dataset_id}/task_counts/name_status": "AUS",
    "GET /datasets/{dataset_id}/task_stats": "AUS",
    "POST /datasets/{dataset_id}/task_actions/bulk_status/{status}": "AUS",
    "POST /datasets/{dataset_id}/task_actions/bulk_suspend": "AUS",
    "POST /datasets/{dataset_id}/task_actions/bulk_reset": "AUS",
    "POST /datasets/{dataset_id}/task_actions/bulk_hard_reset": "AUS",
    "PATCH /datasets/{dataset_id}/task_actions/bulk_requirements/{name}": "AUS",
    "POST /datasets/{dataset_id}/task_actions/bulk_requirements/{name}": "AUS",
    "GET /datasets/{dataset_id}/files": "AUS", "POST /datasets/{dataset_id}/files": "AUS",
    "GET /datasets/{dataset_id}/files/{task_id}": "AUS", "POST /datasets/{dataset_id}/files/{task_id}": "AUS",
    "DELETE /datasets/{dataset_id}/files/{task_id}": "AUS",
    "GET /logs": "AS", "POST /logs": "AS", "GET /logs/{log_id}": "AS", "DELETE /logs/{log_id}": "AS",
    "POST /datasets/{dataset_id}/logs": "AU", "DELETE /datasets/{dataset_id}/logs": "AU",
    "GET /datasets/{dataset_id}/logs/{log_id}": "AU", "GET /datasets/{dataset_id}/tasks/{task_id}/logs": "AU",
    "DELETE /datasets/{dataset_id}/tasks/{task_id}/logs": "AU",
    "POST /tasks/{task_id}/task_stats": "AS", "GET /datasets/{dataset_id}/bulk/task_stats": "AUS",
    "GET /datasets/{dataset_id}/tasks/{task_id}/task_stats": "AUS",
    "GET /datasets/{dataset_id}/tasks/{task_id}/task_stats/{task_stat_id}": "AUS",
    "GET /actions/{action}": "AUS", "POST /actions/{action}": "AUS", "GET /actions/{action}/{message_id}": "AUS",
    "GET /actions/materialization/datasets/{dataset_id}": "AUS",
    "POST /actions/materialization/datasets/{dataset_id}": "AUS",
    **{f"{method} {path}": "AUS" for method in ("GET", "POST", "PATCH", "DELETE")
       for path in ("/users/{username}/credentials", "/groups/{group_name}/credentials")},
    **{f"{method} {path}": "AS" for method in ("GET", "POST", "PATCH", "DELETE")
       for path in ("/datasets/{dataset_id}/credentials", "/datasets/{dataset_id}/tasks/{task_name}/credentials")},
}
LETTERS = {"A": "admin", "U": "user", "S": "system"}


def test_roles_are_iceprods_route_by_route(server):
    """``system`` may do what IceProd's system may, and no more; pilots only pilot routes."""
    specs = {f"{s.method} {s.path}": s for s in server.app[ROUTE_SPECS] if s.tag != "web"}
    differences = []
    for route, letters in ICEPROD_ROLES.items():
        assert route in specs, f"{route} (an IceProd route) is missing"
        expected = {LETTERS[letter] for letter in letters}
        declared = specs[route].roles - {"pilot"}
        if declared != expected:
            differences.append(f"{route}: frazil {sorted(declared)}, IceProd {sorted(expected)}")
    assert not differences, "\n".join(differences)
    for route, spec in specs.items():
        assert ("pilot" in spec.roles) == spec.pilot, route
        if spec.pilot and ANONYMOUS not in spec.roles:  # old IceProd-style pilots carry system tokens
            assert "system" in spec.roles, route
