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
from server.store import DatasetRights, NewDataset, NewJob, NewTask

CALLERS = ("anonymous", "other user", "owner", "group member", "admin", "pilot")


def expected_allowed(spec, caller: str) -> bool:
    if ANONYMOUS in spec.roles:
        return True
    if caller == "anonymous":
        return False
    if caller == "pilot":
        return spec.pilot and "system" in spec.roles
    if caller == "admin":
        return "admin" in spec.roles
    if "user" not in spec.roles:
        return False
    if spec.tag == "credentials":
        # a user's own or own groups' credentials only; the path names "nonexistent"
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
        "pilot": server.token("pilot-1", role="system", groups=()),
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
