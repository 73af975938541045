"""The starvation case end to end (issue 14.3): a task whose OS no pilot serves is shown
unmatchable with its reason in GET /datasets/{id}, the dataset page and the admin page,
and runs as soon as a real pilot of that OS registers."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from common.batchsys import checked, group_of
from common.osarch import os_string
from tests.pilot.pilot_support import Deployment, deploy, tasks_of, wait_for, with_store
from tests.web.conftest import hidden

EL7 = "RHEL_7_x86_64"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    # the unmatchable check runs every provider_interval_seconds, also with provider none
    d = deploy(tmp_path, FRAZIL_PROVIDER_INTERVAL_SECONDS="0.2")
    yield d
    d.stop_all()


def _get(deployment: Deployment, path: str, token: str) -> requests.Response:
    return requests.get(deployment.server.url + path, timeout=30, headers={"Authorization": f"Bearer {token}"})


def _signed_in(deployment: Deployment, token: str) -> requests.Session:
    """A website session (the pages take a login, not a bearer token)."""
    session = requests.Session()
    form = session.get(f"{deployment.server.url}/login", timeout=30).text
    reply = session.post(f"{deployment.server.url}/login", allow_redirects=False, timeout=30,
                         data={"csrf_token": hidden(form), "next": "/", "token": token})
    assert reply.status_code == 303, reply.text
    return session


@pytest.mark.slow
async def test_a_task_no_pilot_can_run_is_shown_unmatchable_and_runs_when_one_registers(
        deployment: Deployment) -> None:
    assert os_string() != EL7, "this test needs a worker that is not EL7"
    config = {"version": 3.2, "tasks": [{
        "name": "el7", "requirements": {"memory": 0.05, "os": [EL7]},
        "trays": [{"modules": [{"src": "/bin/echo", "args": "ran on el7"}]}]}]}
    dataset_id = await deployment.submit(config, jobs=1)
    alice = deployment.server.token("alice", role="user", groups="users")
    admin = deployment.server.token("root", role="admin", groups="users")
    # a pilot of this machine's OS registers: it cannot run the task (no EL7 image here)
    deployment.pilot("here", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "60")
    found: dict[str, Any] = {}

    async def shown() -> bool:
        doc = _get(deployment, f"/datasets/{dataset_id}", alice).json()
        found["doc"] = doc
        # before the pilot registers the reason is "no pilot is registered ..."
        return any(u["reason"].startswith("needs OS") for u in doc["unmatchable"])

    await wait_for(shown, 60, "the task to be shown unmatchable", lambda: str(found))
    [entry] = found["doc"]["unmatchable"]
    assert entry["tasks"] == 1 and entry["os"] == [EL7]
    assert entry["reason"].startswith(f"needs OS {EL7}: no registered pilot (and no provider is configured) "
                                      "serves it")
    page = _signed_in(deployment, alice).get(f"{deployment.server.url}/dataset/{dataset_id}", timeout=30)
    assert page.status_code == 200 and 'id="unmatchable"' in page.text and f"needs OS {EL7}" in page.text
    admin_page = _signed_in(deployment, admin).get(f"{deployment.server.url}/admin", timeout=30)
    assert admin_page.status_code == 200 and f"needs OS {EL7}" in admin_page.text
    [row] = await tasks_of(deployment.db, dataset_id)
    assert row["status"] == "queued"

    deployment.pilot("el7", "--os", EL7, "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "5")

    async def done() -> bool:
        rows = await tasks_of(deployment.db, dataset_id)
        return rows[0]["status"] in ("complete", "failed")

    await wait_for(done, 60, "the EL7 task", lambda: deployment.log("el7")[-3000:])
    [row] = await tasks_of(deployment.db, dataset_id)
    assert row["status"] == "complete"

    async def cleared() -> bool:
        return _get(deployment, f"/datasets/{dataset_id}", alice).json()["unmatchable"] == []

    await wait_for(cleared, 30, "the mark to go")


@pytest.mark.slow
async def test_a_batchsys_task_waits_for_a_pilot_of_its_group(deployment: Deployment) -> None:
    batchsys = {"condor": {"+AccountingGroup": '"icecube.prod"'}}
    group = group_of(checked(batchsys))
    config = {"version": 3.2, "tasks": [{
        "name": "grouped", "batchsys": batchsys, "requirements": {"memory": 0.05},
        "trays": [{"modules": [{"src": "/bin/echo", "args": "in my group"}]}]}]}
    dataset_id = await deployment.submit(config, jobs=1)
    alice = deployment.server.token("alice", role="user", groups="users")
    deployment.pilot("plain", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "60")
    found: dict[str, Any] = {}

    async def shown() -> bool:
        found["doc"] = doc = _get(deployment, f"/datasets/{dataset_id}", alice).json()
        return any(u["reason"].startswith("needs a pilot of its batchsys group") for u in doc["unmatchable"])

    await wait_for(shown, 60, "the task to be shown unmatchable", lambda: str(found))
    [row] = await tasks_of(deployment.db, dataset_id)
    assert row["status"] == "queued" and row["requirements"]["batchsys"] == checked(batchsys)
    # a registration naming a malformed group is refused with the field named
    bad = requests.post(deployment.server.url + "/pilots", timeout=30,
                        headers={"Authorization": f"Bearer {deployment.token}"},
                        json={"resources": {"cpu": 1, "memory": 1, "disk": 1}, "group": "prod; rm"})
    assert bad.status_code == 400 and "group" in bad.text

    deployment.pilot("grouped", "--group", group, "--cpus", "1", "--memory", "1", "--disk", "5",
                     "--idle-timeout", "5")

    async def done() -> bool:
        return (await tasks_of(deployment.db, dataset_id))[0]["status"] in ("complete", "failed")

    await wait_for(done, 60, "the group's task", lambda: deployment.log("grouped")[-3000:])
    [row] = await tasks_of(deployment.db, dataset_id)
    assert row["status"] == "complete"
    [attempt] = await with_store(deployment.db, lambda s: s.get_attempts(row["task_id"]))
    pilot = await with_store(deployment.db, lambda s: s.get_pilot(attempt.pilot_id))
    assert pilot.os[-1] == group  # the group's pilot ran it, not the plain one
