"""Logs: IceProd's routes, rights, and live streaming fenced by instance_id."""
from __future__ import annotations

import time

import pytest
import requests

from server.keys import LOG_INDEX
from tests.server.test_api_pilot_support import claim, make_dataset, register


async def _status(coro) -> int:
    try:
        await coro
    except requests.HTTPError as exc:
        return exc.response.status_code
    return 200


async def test_streaming_create_append_read_back(server):
    made = await make_dataset(server.store)
    pilot = server.rest(server.token("pilot-1", role="pilot"))
    task = await claim(pilot, await register(pilot))
    tid, iid = task["task_id"], task["instance_id"]
    log_id = (await pilot.request("POST", f"/tasks/{tid}/logs", {"instance_id": iid, "name": "stdout",
                                                                "data": "line 1\n"}))["result"]
    for n in range(2, 5):
        reply = await pilot.request("PATCH", f"/logs/{log_id}", {"instance_id": iid, "append": f"line {n}\n"})
    assert reply["size"] == len("line 1\nline 2\nline 3\nline 4\n")

    # the owner reads it while the task runs
    owner = server.rest(server.token("alice"))
    logs = await owner.request("GET", f"/datasets/{made.dataset.dataset_id}/tasks/{tid}/logs")
    assert [(l["name"], l["data"], l["attempt"]) for l in logs["logs"]] == [
        ("stdout", "line 1\nline 2\nline 3\nline 4\n", 1)]

    # the task is reaped and re-claimed: the old claim can neither append nor start a log
    await server.store.expire_leases(now=time.time() + server.settings.lease_seconds + 1)
    await server.store.queue_tasks(10)
    newer = await claim(pilot, await register(pilot))
    assert newer["task_id"] == tid
    assert await _status(pilot.request("PATCH", f"/logs/{log_id}", {"instance_id": iid, "append": "late\n"})) == 409
    assert await _status(pilot.request("POST", f"/tasks/{tid}/logs", {"instance_id": iid, "name": "x"})) == 409
    # nor can the new claim write into the old attempt's log
    assert await _status(pilot.request("PATCH", f"/logs/{log_id}",
                                       {"instance_id": newer["instance_id"], "append": "x"})) == 409
    assert await _status(pilot.request("PATCH", f"/logs/{log_id}", {"append": "no fence"})) == 400
    assert (await server.store.get_log(log_id)).data.endswith("line 4\n")


async def test_task_logs_num_group_order_keys(server):
    made = await make_dataset(server.store)
    tid = made.task_ids[0]
    pilot = server.rest(server.token("pilot-1", role="pilot"))
    for name, data in [("stdout", "a"), ("stderr", "b"), ("stdout", "c")]:
        await pilot.request("POST", "/logs", {"name": name, "data": data, "task_id": tid})
    owner = server.rest(server.token("alice"))
    path = f"/datasets/{made.dataset.dataset_id}/tasks/{tid}/logs"
    newest = await owner.request("GET", path, {"group": "true"})
    assert [(l["name"], l["data"]) for l in newest["logs"]] == [("stdout", "c"), ("stderr", "b")]
    oldest = await owner.request("GET", path, {"order": "asc", "num": 1, "keys": "data"})
    assert oldest["logs"] == [{"log_id": oldest["logs"][0]["log_id"], "data": "a"}]
    assert all(l["dataset_id"] == made.dataset.dataset_id for l in (await owner.request("GET", path))["logs"])
    assert await _status(owner.request("GET", path, {"order": "sideways"})) == 400
    assert await _status(owner.request("GET", path, {"num": "many"})) == 400

    await owner.request("DELETE", path)
    assert await _status(owner.request("GET", path)) == 404


async def test_log_rights(server):
    made = await make_dataset(server.store, owner="alice", group="simprod")
    did = made.dataset.dataset_id
    tid = made.task_ids[0]
    owner = server.rest(server.token("alice", groups=["users"]))
    log_id = (await owner.request("POST", f"/datasets/{did}/logs", {"data": "hello", "name": "note",
                                                                    "task_id": tid}))["result"]
    reader = server.rest(server.token("bob", groups=["users"]))  # every IceCube user reads (read right)
    assert (await reader.request("GET", f"/datasets/{did}/logs/{log_id}"))["data"] == "hello"
    assert await _status(reader.request("POST", f"/datasets/{did}/logs", {"data": "x"})) == 403
    assert await _status(reader.request("DELETE", f"/datasets/{did}/logs")) == 403
    outsider = server.rest(server.token("eve", groups=["guests"]))
    assert await _status(outsider.request("GET", f"/datasets/{did}/logs/{log_id}")) == 403
    assert await _status(reader.request("GET", "/logs")) == 403  # admin only
    pilot = server.rest(server.token("pilot-1", role="pilot"))
    assert await _status(pilot.request("GET", f"/datasets/{did}/logs/{log_id}")) == 403
    assert await _status(owner.request("POST", f"/datasets/{did}/logs",
                                       {"data": "x", "task_id": "not-a-task"})) == 404

    admin = server.rest(server.token("root", role="admin", groups=["admin"]))
    listed = await admin.request("GET", "/logs", {"dataset_id": did})
    assert list(listed) == [log_id]
    assert set(listed[log_id]) == {"log_id", "name", "data", "timestamp", "task_id", "dataset_id"}
    assert (await owner.request("DELETE", f"/datasets/{did}/logs")) == {"deleted": 1}
    assert await _status(admin.request("GET", f"/logs/{log_id}")) == 404


async def test_post_log_checks_its_task(server):
    made = await make_dataset(server.store)
    other = await make_dataset(server.store)
    pilot = server.rest(server.token("pilot-1", role="pilot"))
    assert await _status(pilot.request("POST", "/logs", {"data": "x", "task_id": made.task_ids[0],
                                                         "dataset_id": other.dataset.dataset_id})) == 404
    assert await _status(pilot.request("POST", "/logs", {"data": 5})) == 400
    assert await _status(pilot.request("POST", "/logs", {"data": "x", "colour": "red"})) == 400
    assert (await server.store.list_logs()).rows == []


async def test_streamed_logs_stop_at_their_size_limit(server):
    server.app[LOG_INDEX].max_chars = 20
    made = await make_dataset(server.store)
    pilot = server.rest(server.token("pilot-1", role="pilot"))
    task = await claim(pilot, await register(pilot))
    tid, iid = task["task_id"], task["instance_id"]
    log_id = (await pilot.request("POST", f"/tasks/{tid}/logs", {"instance_id": iid, "name": "stdout",
                                                                "data": "0123456789"}))["result"]
    assert (await pilot.request("PATCH", f"/logs/{log_id}", {"instance_id": iid, "append": "abcdefghij"}))["size"] == 20
    assert await _status(pilot.request("PATCH", f"/logs/{log_id}", {"instance_id": iid, "append": "!"})) == 413
    assert (await server.store.get_log(log_id)).data == "0123456789abcdefghij"
    # a log deleted meanwhile is simply gone
    small = (await pilot.request("POST", f"/tasks/{tid}/logs", {"instance_id": iid, "name": "stdlog"}))["result"]
    owner = server.rest(server.token("alice"))
    await owner.request("DELETE", f"/datasets/{made.dataset.dataset_id}/tasks/{tid}/logs")
    assert await _status(pilot.request("PATCH", f"/logs/{small}", {"instance_id": iid, "append": "x"})) == 404
    # a log this server did not create (another replica, a restart) is looked up once
    other = (await pilot.request("POST", "/logs", {"name": "stderr", "data": "12345", "task_id": tid}))["result"]
    server.app[LOG_INDEX].max_chars = 8
    server.app[LOG_INDEX].forget(other)
    assert (await pilot.request("PATCH", f"/logs/{other}", {"instance_id": iid, "append": "678"}))["size"] == 8
    assert await _status(pilot.request("PATCH", f"/logs/{other}", {"instance_id": iid, "append": "9"})) == 413
