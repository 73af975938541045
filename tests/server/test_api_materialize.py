"""Materialization on the real SQLite store: dependencies (same job and
cross-dataset, also before the other dataset has the job), per-job macro
requirements with the shared fast path, brakes, idempotent retries."""
from __future__ import annotations

import dataclasses
import re

import pytest

from common.config import check_config
from server.scheduling.materialize import MaterializeError, materialize, task_id_for
from server.store import ListOptions, TaskFilter
from tests.server.user_api_helpers import config, create_dataset

pytestmark = pytest.mark.asyncio


async def _tasks(store, dataset_id, **flt):
    page = await store.list_tasks(TaskFilter(dataset_id=dataset_id, **flt), ListOptions())
    return page.rows


async def test_same_job_depends_and_static_requirements(server):
    dataset_id = await create_dataset(server, server.token("alice"), jobs=2)
    rows = await _tasks(server.store, dataset_id, job_index=1)
    by_name = {r["name"]: r for r in rows}
    assert by_name["generate"]["depends"] == []
    assert by_name["propagate"]["depends"] == [by_name["generate"]["task_id"]]
    assert by_name["detect"]["depends"] == [by_name["propagate"]["task_id"]]
    assert by_name["generate"]["requirements"]["memory"] == 2.0 and by_name["propagate"]["requirements"]["gpu"] == 1
    assert {r["status"] for r in rows} == {"idle"} and {r["config_version"] for r in rows} == {1}


async def test_macro_requirements_resolved_per_job_with_task_name(server):
    cfg = config(steering={"parameters": {"base": 2}})
    cfg["tasks"][0]["requirements"] = {"memory": "$eval($(base) + $(job))", "os": ["$(task)"]}
    dataset_id = await create_dataset(server, server.token("alice"), jobs=3, cfg=cfg)
    rows = await _tasks(server.store, dataset_id, name=["generate"])
    assert sorted(r["requirements"]["memory"] for r in rows) == [2, 3, 4]
    assert {tuple(r["requirements"]["os"]) for r in rows} == {("generate",)}  # $(task) is the name (IceProd: index)


async def test_bad_macro_requirement_is_a_clear_error(server):
    cfg = config()
    cfg["tasks"][0]["requirements"] = {"memory": "$eval(0 - $(job))"}
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=2, cfg=cfg, materialized=False)
    with pytest.raises(MaterializeError, match=r"job 0, task 'generate'.*memory"):
        await materialize(server.store, server.settings, dataset_id, 2)
    assert await server.store.max_job_index(dataset_id) == -1


async def test_cross_dataset_depends_pending_until_other_job_exists_and_completes(server):
    token = server.token("alice")
    upstream = await create_dataset(server, token, jobs=2, materialized=False)
    cfg = config()
    cfg["tasks"][0]["depends"] = [f"{upstream}:detect"]
    downstream = await create_dataset(server, token, jobs=2, cfg=cfg)
    gen = {r["job_index"]: r for r in await _tasks(server.store, downstream, name=["generate"])}
    assert gen[1]["depends"] == [task_id_for(upstream, 1, 2)]
    assert await server.store.release_dependencies() == 0  # upstream job 1 does not even exist yet
    await materialize(server.store, server.settings, upstream, 2)
    up_detect = {r["job_index"]: r["task_id"] for r in await _tasks(server.store, upstream, name=["detect"])}
    assert up_detect[1] == gen[1]["depends"][0]
    assert await server.store.release_dependencies(dataset_id=downstream) == 0  # exists, not complete
    await server.store.bulk_task_status("complete", task_ids=[up_detect[1]], force=True)
    assert await server.store.release_dependencies(dataset_id=downstream) == 1
    released = await _tasks(server.store, downstream, status=["waiting"])
    assert [r["task_id"] for r in released] == [gen[1]["task_id"]]


async def test_cross_dataset_depends_by_index_and_bad_reference(server):
    token = server.token("alice")
    upstream = await create_dataset(server, token, jobs=1)
    cfg = config()
    cfg["tasks"][0]["depends"] = [f"{upstream}:1"]
    by_index = await create_dataset(server, token, jobs=1, cfg=cfg)
    row = (await _tasks(server.store, by_index, name=["generate"]))[0]
    assert row["depends"] == [task_id_for(upstream, 0, 1)]
    cfg["tasks"][0]["depends"] = [f"{upstream}:nosuch"]
    bad = await create_dataset(server, token, jobs=1, cfg=cfg, materialized=False)
    with pytest.raises(MaterializeError, match="has no task 'nosuch'"):
        await materialize(server.store, server.settings, bad, 1)


async def test_retry_is_idempotent_and_brakes_apply(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, jobs=5, materialized=False)
    assert await materialize(server.store, server.settings, dataset_id, 2) == 2
    assert await materialize(server.store, server.settings, dataset_id, 2) == 2
    assert await server.store.max_job_index(dataset_id) == 3
    small = dataclasses.replace(server.settings, backlog_limit=3)
    await server.store.bulk_task_status("waiting", dataset_id=dataset_id)
    assert await materialize(server.store, small, dataset_id, 10) == 0  # 12 tasks waiting > limit 3
    assert await materialize(server.store, server.settings, dataset_id, 10) == 1  # only 5 jobs submitted
    assert await materialize(server.store, server.settings, dataset_id, 10) == 0
    other = await create_dataset(server, token, jobs=5, materialized=False)
    await server.store.truncate_dataset(other)
    assert await materialize(server.store, server.settings, other, 5) == 0


async def test_task_count_mismatch_is_refused(server):
    token = server.token("alice")
    rc = server.rest(token)
    reply = await rc.request("POST", "/datasets", {"description": "d", "jobs_submitted": 1, "tasks_submitted": 2,
                                                   "tasks_per_job": 2, "group": "users"})
    await rc.request("PUT", f"/config/{reply['result']}", config())
    with pytest.raises(MaterializeError, match="3 tasks but the dataset has tasks_per_job=2"):
        await materialize(server.store, server.settings, reply["result"], 1)


async def test_materialize_reads_depends_as_the_submit_checks_do(server):
    """A config stored without the checks (an older version, another tool)
    with a dependency on a later task: materialization refuses it with the
    very message the submit checks give (one reader, common.config.depends)."""
    cfg = config()
    for task in cfg["tasks"]:
        task["depends"] = []
    cfg["tasks"][0]["depends"] = ["detect"]
    [problem] = check_config(cfg)
    assert problem.message.startswith("depends on a later task 'detect'")
    assert problem.path == "config['tasks'][0]['depends'][0]"
    dataset_id = await create_dataset(server, server.token("alice"), jobs=1, materialized=False)
    await server.store.add_config_version(dataset_id, cfg, "alice")  # straight into the store
    with pytest.raises(MaterializeError, match=re.escape(problem.message)):
        await materialize(server.store, server.settings, dataset_id, 1)
