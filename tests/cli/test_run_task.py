"""``frazil run --task``: a task that ran under a real pilot, re-run here the same way.

A real server and a real pilot run a two-job dataset whose per-job input file
(IceProd's ``task_files``) decides the outcome: job 0's input makes the module
fail (physics), job 1's lets it complete and write a permanent output. The
debug run must fail the same way with the same classification, print the
argv the attempt recorded, keep outputs in its work dir unless asked, and
leave the server's task, attempt and log records exactly as they were.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from rest_tools.client import RestClient

from tests.pilot.pilot_support import REPO, Deployment, deploy, tasks_of, wait_for

pytestmark = pytest.mark.slow

WORK_SH = """#!/bin/sh
read line < input.txt
echo "input: $line"
if [ "$line" = "bad" ]; then
  echo "bad event in input" >&2
  exit 3
fi
echo "result of $1" > result.txt
"""


def _config(script: Path, outdir: Path) -> dict[str, Any]:
    return {"version": 3.2, "tasks": [{
        "name": "work", "task_files": True,
        "requirements": {"cpu": 1, "memory": 0.5, "time": 0.05},
        "data": [{"remote": f"{outdir.as_uri()}/out.$(job).txt", "local": "result.txt",
                  "type": "permanent", "movement": "output"}],
        "trays": [{"modules": [{"src": str(script), "args": "job$(job)"}]}],
    }]}


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path)
    yield d
    d.stop_all()


def _frazil(d: Deployment, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FRAZIL_URL": d.server.url, "FRAZIL_TOKEN": token}
    env.pop("FRAZIL_TOKEN_FILE", None)
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def _frazil_run(d: Deployment, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _frazil(d, token, "run", *args, "--workdir", str(d.tmp / "debug"))


def _server_state(client: RestClient, dataset_id: str, task_ids: list[str]) -> dict[str, Any]:
    state = {}
    for task_id in task_ids:
        state[task_id] = {
            "task": client.request_seq("GET", f"/datasets/{dataset_id}/tasks/{task_id}"),
            "attempts": client.request_seq("GET", f"/datasets/{dataset_id}/tasks/{task_id}/attempts"),
            "logs": client.request_seq("GET", f"/datasets/{dataset_id}/tasks/{task_id}/logs"),
            "stats": client.request_seq("GET", f"/datasets/{dataset_id}/tasks/{task_id}/task_stats"),
        }
    return state


async def test_a_failed_task_reruns_locally_the_same_way(deployment: Deployment) -> None:
    d = deployment
    script = d.tmp / "work.sh"
    script.write_text(WORK_SH)
    outdir = d.tmp / "outputs"
    outdir.mkdir()
    user_token = d.server.token("alice", role="user", groups="users")
    client = RestClient(d.server.url, user_token, timeout=10, retries=0)
    dataset_id = await d.submit(_config(script, outdir), jobs=2)
    await wait_for(lambda: _count(d, dataset_id, 2), 30, "two tasks materialized")
    tasks = {t["job_index"]: t for t in await tasks_of(d.db, dataset_id)}
    inputs = d.tmp / "inputs"
    inputs.mkdir()
    for job, content in ((0, "bad"), (1, "good")):
        (inputs / f"in{job}.txt").write_text(content + "\n")
        client.request_seq("POST", f"/datasets/{dataset_id}/files", {
            "job_index": job, "task_name": "work", "filename": (inputs / f"in{job}.txt").as_uri(),
            "local": "input.txt", "movement": "input"})
    d.pilot("p1", "--cpus", "2", "--memory", "2", "--disk", "2")

    async def ended() -> bool:
        return {t["status"] for t in await tasks_of(d.db, dataset_id)} <= {"failed", "complete"}
    await wait_for(ended, 90, "both tasks ended under the pilot", lambda: d.log("p1"))
    bad, good = tasks[0]["task_id"], tasks[1]["task_id"]
    dataset = client.request_seq("GET", f"/datasets/{dataset_id}")
    number = str(dataset["dataset"])
    before = _server_state(client, dataset_id, [bad, good])
    attempt = before[bad]["attempts"]["attempts"][-1]
    assert (attempt["status"], attempt["failure_class"]) == ("failed", "physics")
    assert (outdir / "out.1.txt").read_text() == "result of job1\n"

    # frazil logs shows the task's logs and the command that re-runs it here.
    logs = _frazil(d, user_token, "logs", number, "0/work")
    assert logs.returncode == 0 and "bad event in input" in logs.stdout, logs.stderr
    assert f"frazil run --task {bad} --dataset {number}" in logs.stderr

    # The failure, reproduced: same class, kind and rule, from the same per-job input.
    rerun = _frazil_run(d, user_token, "--task", bad, "--dataset", number)
    assert rerun.returncode == 1, rerun.stderr
    verdict = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert (verdict["status"], verdict["class"], verdict["kind"], verdict["rule"]) == (
        "failed", attempt["failure_class"], attempt["kind"], attempt["rule"] or None)
    assert f"attempt {attempt['attempt']}" in rerun.stderr and "config version" in rerun.stderr

    # --dry-run prints exactly the argv the attempt recorded.
    dry = _frazil_run(d, user_token, "--task", "0/work", "--dataset", dataset_id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    recorded = [shlex.join(m["argv"]) for m in attempt["modules"]]
    assert recorded and all(line in dry.stdout.splitlines() for line in recorded), (recorded, dry.stdout)

    # A good task completes here, but its output stays in the work dir unless --stage-out.
    (outdir / "out.1.txt").unlink()
    local = _frazil_run(d, user_token, "--task", good, "--dataset", number, "--env-from-attempt")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout.strip().splitlines()[-1])["status"] == "complete"
    assert not (outdir / "out.1.txt").exists()
    assert "not written to" in local.stderr
    assert list((d.tmp / "debug").rglob("result.txt"))
    staged = _frazil_run(d, user_token, "--task", good, "--dataset", number, "--stage-out")
    assert staged.returncode == 0, staged.stderr
    assert (outdir / "out.1.txt").read_text() == "result of job1\n"

    # Nothing changed on the server: no claim, no report, no logs, no stats.
    assert _server_state(client, dataset_id, [bad, good]) == before


async def test_bad_requests_are_one_clear_line(deployment: Deployment) -> None:
    d = deployment
    stranger = d.server.token("mallory", role="user", groups="others")
    user = d.server.token("alice", role="user", groups="users")
    script = d.tmp / "work.sh"
    script.write_text(WORK_SH)
    dataset_id = await d.submit(_config(script, d.tmp), jobs=1)
    await wait_for(lambda: _count(d, dataset_id, 1), 30, "the task materialized")
    task_id = (await tasks_of(d.db, dataset_id))[0]["task_id"]

    denied = _frazil_run(d, stranger, "--task", task_id, "--dataset", dataset_id)
    assert denied.returncode == 1 and "Traceback" not in denied.stderr
    assert "403" in denied.stderr or "not" in denied.stderr
    no_dataset = _frazil_run(d, user, "--task", task_id)
    assert no_dataset.returncode == 1 and "--dataset" in no_dataset.stderr
    no_attempt = _frazil_run(d, user, "--task", task_id, "--dataset", dataset_id, "--attempt", "7")
    assert no_attempt.returncode == 1 and "no attempt 7" in no_attempt.stderr
    mixed = _frazil_run(d, user, "--task", task_id, "--job", "0")
    assert mixed.returncode == 2 and "--job goes with CONFIG.json" in mixed.stderr


async def _count(d: Deployment, dataset_id: str, n: int) -> bool:
    return len(await tasks_of(d.db, dataset_id)) >= n
