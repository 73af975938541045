"""Jobs, tasks and per-job files routes: shapes, filters, pagination, bulk actions with roll-up, bad input."""
from __future__ import annotations

import pytest

from server.store import TaskFilter
from tests.server.user_api_helpers import call, create_dataset

pytestmark = pytest.mark.asyncio


async def _setup(server, jobs=3):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=jobs)
    return token, dataset_id, server.rest(token)


async def test_job_routes(server):
    token, dataset_id, rc = await _setup(server)
    jobs = await rc.request("GET", f"/datasets/{dataset_id}/jobs")
    assert len(jobs) == 3 and all(j["status"] == "processing" for j in jobs.values())
    by_index = await rc.request("GET", f"/datasets/{dataset_id}/jobs", {"job_index": 1, "keys": "job_index"})
    (job_id, doc), = by_index.items()
    assert doc == {"job_id": job_id, "job_index": 1}
    assert (await rc.request("GET", f"/datasets/{dataset_id}/jobs/{job_id}"))["job_index"] == 1
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"processing": 3}
    assert set((await rc.request("GET", f"/datasets/{dataset_id}/job_summaries/status"))["processing"]) == set(jobs)
    await rc.request("PUT", f"/datasets/{dataset_id}/jobs/{job_id}/status", {"status": "suspended"})
    status, reply, _ = await call(server, "PUT", f"/datasets/{dataset_id}/jobs/{job_id}/status", token,
                                  body={"status": "errors"})
    assert status == 400 and reply["error"] == "Bad state transition for status"
    await rc.request("POST", f"/datasets/{dataset_id}/job_actions/bulk_suspend", {"jobs": list(jobs)})
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"suspended": 3}
    await rc.request("POST", f"/datasets/{dataset_id}/job_actions/bulk_reset")
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"processing": 3}
    status, reply, _ = await call(server, "POST", f"/datasets/{dataset_id}/job_actions/bulk_status/complete", token,
                                  body={"jobs": ["f" * 32]})
    assert status == 404
    status, reply, _ = await call(server, "POST", f"/datasets/{dataset_id}/job_actions/bulk_status/finished", token,
                                  body={"jobs": list(jobs)})
    assert status == 400 and "finished" in reply["error"]
    status, _, _ = await call(server, "GET", f"/datasets/{dataset_id}/jobs", token, params={"job_index": "x"})
    assert status == 400
    status, _, _ = await call(server, "GET", f"/jobs/{job_id}", token)
    assert status == 403  # admin route


async def test_admin_job_create_and_patch(server):
    admin = server.token("root", "admin", ["admin"])
    _, dataset_id, _ = await _setup(server, jobs=1)
    rc = server.rest(admin)
    job_id = (await rc.request("POST", "/jobs", {"dataset_id": dataset_id, "job_index": 7}))["result"]
    assert (await rc.request("GET", f"/jobs/{job_id}"))["job_index"] == 7
    assert (await rc.request("PATCH", f"/jobs/{job_id}", {"status": "errors"}))["status"] == "errors"
    status, reply, _ = await call(server, "POST", "/jobs", admin, body={"dataset_id": dataset_id, "job_index": 7})
    assert status == 409
    status, reply, _ = await call(server, "PATCH", f"/jobs/{job_id}", admin, body={"status": "complete", "colour": 1})
    assert status == 400 and "invalid keys found" in reply["error"]


async def test_task_listing_filters_and_pagination(server):
    token, dataset_id, rc = await _setup(server, jobs=4)
    tasks = await rc.request("GET", f"/datasets/{dataset_id}/tasks", {"keys": "job_index|name|status"})
    assert len(tasks) == 12
    first = next(iter(tasks.values()))
    assert set(first) == {"task_id", "job_index", "name", "status"} and first["status"] == "idle"
    named = await rc.request("GET", f"/datasets/{dataset_id}/tasks", {"name": "detect|generate", "job_index": 2})
    assert sorted(t["name"] for t in named.values()) == ["detect", "generate"]
    seen, after = [], None
    while True:
        params = {"limit": "5", "keys": "name", **({"after": after} if after else {})}
        status, body, headers = await call(server, "GET", f"/datasets/{dataset_id}/tasks", token, params=params)
        seen.extend(body)
        after = headers.get("X-Next-Cursor")
        if not after:
            break
    assert seen == list(tasks)
    status, reply, _ = await call(server, "GET", f"/datasets/{dataset_id}/tasks", token, params={"status": "bogus"})
    assert status == 400 and "bogus" in reply["error"]
    status, reply, _ = await call(server, "GET", f"/datasets/{dataset_id}/tasks", token, params={"limit": "10000000"})
    assert status == 400 and "limit" in reply["error"]
    status, reply, _ = await call(server, "GET", f"/datasets/{dataset_id}/tasks", token, params={"after": "garbage!"})
    assert status == 400
    task_id = next(iter(tasks))
    one = await rc.request("GET", f"/datasets/{dataset_id}/tasks/{task_id}", {"keys": "name|requirements.memory"})
    assert one["task_id"] == task_id and set(one) == {"task_id", "name", "requirements"}
    assert (await rc.request("GET", f"/datasets/{dataset_id}/tasks/{task_id}/attempts")) == {"attempts": []}
    assert await rc.request("GET", f"/datasets/{dataset_id}/task_counts/status") == {"idle": 12}
    assert await rc.request("GET", f"/datasets/{dataset_id}/task_counts/status", {"gpu": "true"}) == {"idle": 4}
    names = await rc.request("GET", f"/datasets/{dataset_id}/task_counts/name_status")
    assert list(names) == ["generate", "propagate", "detect"] and names["detect"] == {"idle": 4}
    assert len((await rc.request("GET", f"/datasets/{dataset_id}/task_summaries/status"))["idle"]) == 12
    assert await rc.request("GET", f"/datasets/{dataset_id}/task_stats") == {}


async def test_task_status_changes_roll_up_jobs_and_dataset(server):
    token, dataset_id, rc = await _setup(server, jobs=2)
    tasks = await rc.request("GET", f"/datasets/{dataset_id}/tasks", {"job_index": 0})
    ids = list(tasks)
    await rc.request("POST", f"/datasets/{dataset_id}/task_actions/bulk_status/complete", {"tasks": ids})
    jobs = await rc.request("GET", f"/datasets/{dataset_id}/jobs", {"job_index": 0})
    assert next(iter(jobs.values()))["status"] == "complete"  # rolled up in the same request
    await rc.request("POST", f"/datasets/{dataset_id}/task_actions/bulk_suspend")
    job_counts = await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status")
    assert job_counts == {"complete": 1, "suspended": 1}
    await rc.request("POST", f"/datasets/{dataset_id}/task_actions/bulk_hard_reset", {"tasks": ids[:1]})
    assert (await server.store.get_task(ids[0])).status == "idle"
    assert await rc.request("GET", f"/datasets/{dataset_id}/job_counts/status") == {"processing": 1, "suspended": 1}
    await rc.request("POST", f"/datasets/{dataset_id}/task_actions/bulk_reset")
    assert await rc.request("GET", f"/datasets/{dataset_id}/task_counts/status") == {"idle": 4, "complete": 2}
    other = ids[1]
    await rc.request("PUT", f"/datasets/{dataset_id}/tasks/{ids[0]}/status", {"status": "suspended"})
    status, reply, _ = await call(server, "PUT", f"/datasets/{dataset_id}/tasks/{other}/status", token,
                                  body={"status": "queued"})
    assert status == 400 and reply["error"] == "Bad state transition for status"
    status, reply, _ = await call(server, "POST", f"/datasets/{dataset_id}/task_actions/bulk_reset", token,
                                  body={"jobs": [1, 2]})
    assert status == 400


async def test_bulk_requirements(server):
    token, dataset_id, rc = await _setup(server, jobs=2)
    await rc.request("PATCH", f"/datasets/{dataset_id}/task_actions/bulk_requirements/detect", {"memory": 3.5})
    page = await server.store.list_tasks(TaskFilter(dataset_id=dataset_id, name=["detect"]))
    assert {row["requirements"]["memory"] for row in page.rows} == {3.5}
    status, reply, _ = await call(server, "PATCH", f"/datasets/{dataset_id}/task_actions/bulk_requirements/detect",
                                  token, body={"memory": "lots"})
    assert status == 400 and "memory" in reply["error"]
    status, reply, _ = await call(server, "PATCH", f"/datasets/{dataset_id}/task_actions/bulk_requirements/detect",
                                  token, body={"ram": 2})
    assert status == 400 and "invalid keys found" in reply["error"]
    status, _, _ = await call(server, "POST", f"/datasets/{dataset_id}/task_actions/bulk_requirements/nosuch",
                              token, body={"cpu": 2})
    assert status == 404


async def test_files_routes(server):
    token, dataset_id, rc = await _setup(server, jobs=2)
    status, body, _ = await call(server, "POST", f"/datasets/{dataset_id}/files", token,
                                 body={"filename": "gsiftp://x/in.i3", "movement": "input", "job_index": 1,
                                       "task_name": "generate"})
    assert status == 201
    task_id = body["result"]
    status, body, _ = await call(server, "POST", f"/datasets/{dataset_id}/files/{task_id}", token,
                                 body={"filename": "gsiftp://x/out.i3", "movement": "output", "transfer": "maybe"})
    assert (status, body) == (201, {})
    files = (await rc.request("GET", f"/datasets/{dataset_id}/files/{task_id}"))["files"]
    assert [(f["remote"], f["movement"]) for f in files] == [("gsiftp://x/in.i3", "input"), ("gsiftp://x/out.i3", "output")]
    assert "task_id" not in files[0] and "dataset_id" not in files[0]
    assert len((await rc.request("GET", f"/datasets/{dataset_id}/files"))["files"]) == 2
    status, reply, _ = await call(server, "POST", f"/datasets/{dataset_id}/files", token,
                                  body={"filename": "x", "movement": "input", "job_index": 99, "task_name": "generate"})
    assert status == 400 and reply["error"] == "task referred to not found"
    status, reply, _ = await call(server, "POST", f"/datasets/{dataset_id}/files/{task_id}", token,
                                  body={"filename": "x", "movement": "sideways"})
    assert status == 400
    await rc.request("DELETE", f"/datasets/{dataset_id}/files/{task_id}")
    assert (await rc.request("GET", f"/datasets/{dataset_id}/files"))["files"] == []


async def test_admin_task_routes(server):
    admin = server.token("root", "admin", ["admin"])
    _, dataset_id, _ = await _setup(server, jobs=2)
    rc = server.rest(admin)
    everything = await rc.request("GET", "/tasks", {"keys": "name|status", "sort": "name=1", "limit": 3})
    assert [t["name"] for t in everything["tasks"]] == ["detect", "detect", "generate"]
    ids = [t["task_id"] for t in (await rc.request("GET", "/tasks", {"status": "idle"}))["tasks"]]
    generate = [t for t in ids if (await server.store.get_task(t)).name == "generate"]
    assert await rc.request("POST", "/task_actions/waiting", {"task_ids": generate}) == {"waiting": 2}
    queued = await rc.request("POST", "/task_actions/queue_many", {"num": 5})
    assert isinstance(queued, list) and {t["status"] for t in queued} == {"queued"} and len(queued) == 2
    status, _, _ = await call(server, "POST", "/task_actions/queue", admin, body={})
    assert status == 404
    assert (await rc.request("GET", "/task_counts/status")) == {"idle": 4, "queued": 2}
    task = await rc.request("PATCH", f"/tasks/{ids[0]}", {"priority": 0.7})
    assert task["priority"] == 0.7
    await rc.request("PUT", f"/tasks/{generate[0]}/status", {"status": "waiting"})
    await rc.request("POST", "/task_actions/bulk_status/failed", {"tasks": [generate[0]]})
    assert (await rc.request("GET", f"/tasks/{generate[0]}"))["status"] == "failed"
    job_id = "a" * 32
    created = await rc.request("POST", "/tasks", {"dataset_id": dataset_id, "job_id": job_id, "task_index": 0,
                                                  "job_index": 5, "name": "generate", "depends": [],
                                                  "requirements": {}})
    assert (await rc.request("GET", f"/tasks/{created['result']}"))["job_index"] == 5
    status, reply, _ = await call(server, "POST", "/tasks", admin, body={"dataset_id": dataset_id})
    assert status == 400 and reply["error"].startswith("missing key")
    status, _, _ = await call(server, "GET", "/tasks", server.token("alice"))
    assert status == 403


async def test_bulk_status_to_the_same_status_is_not_a_404(server):
    token, dataset_id, rc = await _setup(server, jobs=1)
    ids = list(await rc.request("GET", f"/datasets/{dataset_id}/tasks"))
    for _ in range(2):
        await rc.request("POST", f"/datasets/{dataset_id}/task_actions/bulk_status/suspended", {"tasks": ids})
    status, reply, _ = await call(server, "POST", f"/datasets/{dataset_id}/task_actions/bulk_status/suspended", token,
                                  body={"tasks": ["0" * 32]})
    assert status == 404 and reply["error"] == "Tasks not found"
