"""``frazil extend``: a complete dataset gets more jobs, they run, and it completes again
(a real server, a real pilot, the real command)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.cli.test_run_task import _frazil
from tests.pilot.pilot_support import Deployment, deploy, tasks_of, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path)
    yield d
    d.stop_all()


async def test_extending_a_complete_dataset_runs_the_new_jobs(deployment: Deployment) -> None:
    d = deployment
    config = {"version": 3.2, "tasks": [{"name": "t", "requirements": {"time": 0.05},
                                         "trays": [{"modules": [{"src": "/bin/echo", "args": "job $(job)"}]}]}]}
    token = d.server.token("alice", role="user", groups="users")
    dataset_id = await d.submit(config, jobs=2)
    d.pilot("p1", "--cpus", "2")

    async def statuses() -> list[str]:
        return [t["status"] for t in await tasks_of(d.db, dataset_id)]

    async def dataset_status() -> str:
        return _frazil(d, token, "status", dataset_id).stdout.split("\n", 1)[0].rsplit(" ", 1)[-1]

    async def all_complete(n: int) -> bool:
        return await statuses() == ["complete"] * n and await dataset_status() == "complete"

    await wait_for(lambda: all_complete(2), 60, "the first two jobs", lambda: d.log("p1"))
    extended = _frazil(d, token, "extend", dataset_id, "--add", "3")
    assert extended.returncode == 0, extended.stderr
    assert "2 -> 5 jobs, status processing" in extended.stdout
    await wait_for(lambda: all_complete(5), 60, "the three new jobs", lambda: d.log("p1"))
    assert sorted(t["job_index"] for t in await tasks_of(d.db, dataset_id)) == [0, 1, 2, 3, 4]
    fewer = _frazil(d, token, "extend", dataset_id, "--jobs", "4")
    assert fewer.returncode == 2 and "has 5 jobs already" in fewer.stderr
