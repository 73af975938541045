"""The tutorial's REST example (examples/rest_example.py), run as a separate
process against the real server: only address and token differ from IceProd."""
from __future__ import annotations

import ast
import asyncio
import os
import pathlib
import sys

import pytest

from server.store import NewLog, TaskFilter
from tests.server.user_api_helpers import create_dataset

pytestmark = pytest.mark.asyncio

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "rest_example.py"


async def test_tutorial_rest_example_runs_against_frazil(server):
    token = server.token("alice")
    await create_dataset(server, token, jobs=1, description="first")
    dataset_id = await create_dataset(server, token, jobs=2, description="second")
    page = await server.store.list_tasks(TaskFilter(dataset_id=dataset_id, job_index=1, name=["generate"]))
    task_id = page.rows[0]["task_id"]
    await server.store.bulk_task_status("complete", task_ids=[task_id], force=True)
    await server.store.add_log(NewLog(name="stdout", data="old output", dataset_id=dataset_id, task_id=task_id))
    await asyncio.sleep(0.01)  # distinct timestamps: group=True must pick the newest
    await server.store.add_log(NewLog(name="stdout", data="the newest output", dataset_id=dataset_id, task_id=task_id))
    await server.store.add_log(NewLog(name="stderr", data="warnings", dataset_id=dataset_id, task_id=task_id))

    env = {**os.environ, "FRAZIL_URL": server.url, "FRAZIL_TOKEN": token}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(EXAMPLE), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    printed = [ast.literal_eval(line) for line in lines[:-1]]  # every line but the log is a printed dict
    assert [(d["dataset"], d["jobs_submitted"]) for d in printed[:2]] == [(1, 1), (2, 2)]
    assert set(printed[0]) == {"dataset_id", "dataset", "jobs_submitted"}
    tasks = printed[2:]
    assert len(tasks) == 6 and all(set(t) == {"task_id", "job_index", "name", "status"} for t in tasks)
    assert [t["status"] for t in tasks].count("complete") == 1
    assert lines[-1] == "the newest output"  # group=True: only the newest stdout, no stderr
