"""The claim path and a real pilot with a container task: only pilots that run images claim it."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.pilot.container_support import build_image
from tests.pilot.pilot_support import Deployment, attempts_of, deploy, tasks_of, wait_for, with_store


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path)
    yield d
    d.stop_all()


def _call(deployment: Deployment, method: str, path: str, body: dict, token: str | None = None) -> requests.Response:
    return requests.request(method, deployment.server.url + path, json=body, timeout=30,
                            headers={"Authorization": f"Bearer {token or deployment.token}"})


@pytest.mark.slow
async def test_container_task_goes_only_to_a_pilot_that_runs_images(deployment: Deployment,
                                                                    tmp_path: Path) -> None:
    image = build_image(tmp_path / "el7")
    config = {"version": 3.2, "tasks": [{
        "name": "el7", "container": str(image), "requirements": {"memory": 0.05},
        "trays": [{"modules": [{"src": "/bin/cat", "args": "/etc/os-release"}]}]}]}
    dataset_id = await deployment.submit(config, jobs=1)

    async def queued() -> bool:
        rows = await tasks_of(deployment.db, dataset_id)
        return bool(rows) and rows[0]["status"] == "queued"

    await wait_for(queued, 30, "the task to be queued", lambda: "")
    [row] = await tasks_of(deployment.db, dataset_id)
    assert row["requirements"]["container"] is True
    reply = _call(deployment, "POST", "/pilots", {"resources": {"cpu": 1, "memory": 1, "disk": 1},
                                                  "os": ["RHEL_9_x86_64"]})
    assert reply.status_code == 201
    assert reply.json()["os_images"]["RHEL_7_x86_64"].startswith("/cvmfs/singularity.opensciencegrid.org/")
    bare = reply.json()["result"]
    claim = {"pilot_id": bare, "resources": {"cpu": 1, "memory": 1, "disk": 1, "time": 10}}
    # The registration token only registers; the pilot claims with the token bound to its id.
    bound = reply.json()["token"]
    assert _call(deployment, "POST", "/task_actions/process", {**claim, "os": ["RHEL_9_x86_64"]},
                 bound).status_code == 404

    deployment.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "5")

    async def done() -> bool:
        rows = await tasks_of(deployment.db, dataset_id)
        return rows[0]["status"] in ("complete", "failed")

    await wait_for(done, 60, "the container task", lambda: deployment.log("p1")[-3000:])
    [row] = await tasks_of(deployment.db, dataset_id)
    assert row["status"] == "complete"
    assert "'container'" in deployment.log("p1")  # it advertised the runtime in its claims
    logs = await with_store(deployment.db, lambda s: s.task_logs(row["task_id"]))
    stdout = "".join(log.data for log in logs if log.name == "stdout")
    assert 'ID="centos"' in stdout and stdout != Path("/etc/os-release").read_text()
    [attempt] = await attempts_of(deployment.db, row["task_id"])
    assert attempt.status == "complete"
