"""``frazil logs``: by attempt (newest by default, ``--attempt N``, ``--all``) and ``--follow``,
against a real server and a real pilot running a task that fails once (non-physics) and then
prints slowly while a follower watches."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.cli.test_run_task import _frazil
from tests.pilot.pilot_support import REPO, Deployment, deploy, tasks_of, wait_for

pytestmark = pytest.mark.slow

# The work dir is named ..._<attempt> (modules run sandboxed: they cannot leave a marker elsewhere).
FLAKY = """#!/bin/sh
if [ "${PWD##*_}" = 1 ]; then
  echo "first try output"
  echo "cvmfs2: failed to initialize root file catalog" >&2
  exit 1
fi
i=0
while [ $i -lt 6 ]; do
  echo "line $i"
  i=$((i + 1))
  sleep 0.5
done
"""


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path)
    yield d
    d.stop_all()


def _config(script: Path) -> dict[str, Any]:
    return {"version": 3.2, "tasks": [{"name": "flaky", "requirements": {"time": 0.05},
                                       "trays": [{"modules": [{"src": str(script)}]}]}]}


async def test_logs_by_attempt_and_follow(deployment: Deployment) -> None:
    d = deployment
    script = d.tmp / "flaky.sh"
    script.write_text(FLAKY)
    token = d.server.token("alice", role="user", groups="users")
    dataset_id = await d.submit(_config(script), jobs=1)
    d.pilot("p1", "--cpus", "1")

    async def second_attempt_running() -> bool:
        tasks = await tasks_of(d.db, dataset_id)
        return bool(tasks) and tasks[0]["status"] == "processing" and tasks[0]["attempts"] == 2
    await wait_for(second_attempt_running, 60, "the second attempt to run", lambda: d.log("p1"))
    env_cmd = [sys.executable, "-m", "server.cli", "logs", dataset_id, "0/flaky", "--follow", "--name", "stdout"]
    follower = subprocess.Popen(env_cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env(d, token))
    out, err = await asyncio.to_thread(follower.communicate, timeout=60)
    assert follower.returncode == 0, err
    assert [line for line in out.splitlines() if line.startswith("line ")] == [f"line {i}" for i in range(6)], out
    assert "attempt 2" in out and "first try output" not in out
    task = (await tasks_of(d.db, dataset_id))[0]
    assert task["status"] == "complete"

    newest = _frazil(d, token, "logs", dataset_id, "0/flaky")
    assert newest.returncode == 0, newest.stderr
    assert "line 5" in newest.stdout and "first try output" not in newest.stdout
    assert all("attempt 2" in line for line in newest.stdout.splitlines() if line.startswith("====="))
    first = _frazil(d, token, "logs", dataset_id, "0/flaky", "--attempt", "1")
    assert "first try output" in first.stdout and "cvmfs2" in first.stdout and "line 0" not in first.stdout
    every = _frazil(d, token, "logs", dataset_id, "0/flaky", "--all", "--name", "stdout")
    headers = [line for line in every.stdout.splitlines() if line.startswith("=====")]
    assert ["attempt 1" in headers[0], "attempt 2" in headers[-1]] == [True, True], every.stdout
    listing = _frazil(d, token, "status")
    assert listing.stdout.splitlines()[0].split()[:2] == ["DATASET", "STATUS"], listing.stdout
    missing = _frazil(d, token, "logs", dataset_id, "0/flaky", "--attempt", "9")
    assert missing.returncode == 1 and "no logs of attempt 9 (attempts with logs: 1, 2)" in missing.stderr


def _env(d: Deployment, token: str) -> dict[str, str]:
    import os
    env = {**os.environ, "PYTHONPATH": str(REPO), "FRAZIL_URL": d.server.url, "FRAZIL_TOKEN": token}
    env.pop("FRAZIL_TOKEN_FILE", None)
    return env
