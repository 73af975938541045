"""Task statistics: posted by pilots, read by dataset readers, streamed in bulk."""
from __future__ import annotations

import asyncio

import pytest
import requests

from tests.server.test_api_pilot_support import make_dataset


async def _status(coro) -> int:
    try:
        await coro
    except requests.HTTPError as exc:
        return exc.response.status_code
    return 200


async def test_post_and_read_task_stats(server):
    made = await make_dataset(server.store, jobs=3)
    did = made.dataset.dataset_id
    pilot = server.rest(server.token("pilot-1", role="pilot"))
    ids = {}
    for number, tid in enumerate(made.task_ids):
        for attempt in (1, 2):
            body = {"dataset_id": did, "hostname": "node1", "resources": {"memory": attempt}, "time": attempt}
            ids[(tid, attempt)] = (await pilot.request("POST", f"/tasks/{tid}/task_stats", body))["result"]
    reader = server.rest(server.token("bob"))
    tid = made.task_ids[0]
    both = await reader.request("GET", f"/datasets/{did}/tasks/{tid}/task_stats")
    assert set(both) == {ids[(tid, 1)], ids[(tid, 2)]}
    assert both[ids[(tid, 1)]]["stats"] == {"hostname": "node1", "resources": {"memory": 1}, "time": 1}
    last = await reader.request("GET", f"/datasets/{did}/tasks/{tid}/task_stats", {"last": "true"})
    assert list(last) == [ids[(tid, 2)]]
    one = await reader.request("GET", f"/datasets/{did}/tasks/{tid}/task_stats/{ids[(tid, 1)]}")
    assert one["task_id"] == tid
    other = made.task_ids[1]
    assert await _status(reader.request("GET", f"/datasets/{did}/tasks/{other}/task_stats/{ids[(tid, 1)]}")) == 404

    # bulk: one JSON document per line, read with RestClient.request_stream as IceProd scripts do
    def stream(args):
        return list(reader.request_stream("GET", f"/datasets/{did}/bulk/task_stats", args))
    everything = await asyncio.to_thread(stream, {"buffer_size": 2})
    assert len(everything) == 6 and {d["task_stat_id"] for d in everything} == set(ids.values())
    newest = await asyncio.to_thread(stream, {"last": "true", "keys": "task_id"})
    assert sorted(d["task_id"] for d in newest) == sorted(made.task_ids)
    assert all(set(d) == {"task_stat_id", "task_id"} for d in newest)
    with pytest.raises(requests.HTTPError):
        await asyncio.to_thread(stream, {"after": "garbage"})


async def test_task_stats_bad_input_and_rights(server):
    made = await make_dataset(server.store)
    other = await make_dataset(server.store)
    tid = made.task_ids[0]
    pilot = server.rest(server.token("pilot-1", role="pilot"))
    assert await _status(pilot.request("POST", f"/tasks/{tid}/task_stats",
                                       {"dataset_id": other.dataset.dataset_id})) == 400
    assert await _status(pilot.request("POST", "/tasks/nope/task_stats", {"x": 1})) == 404
    assert await _status(pilot.request("POST", f"/tasks/{tid}/task_stats", {"dataset_id": 7})) == 400
    # dataset_id may be left out: the task knows its dataset
    stat_id = (await pilot.request("POST", f"/tasks/{tid}/task_stats", {"x": 1}))["result"]
    assert (await server.store.get_task_stat(stat_id)).dataset_id == made.dataset.dataset_id
    user = server.rest(server.token("alice"))
    assert await _status(user.request("POST", f"/tasks/{tid}/task_stats", {"x": 1})) == 403
    outsider = server.rest(server.token("eve", groups=["guests"]))
    assert await _status(outsider.request("GET", f"/datasets/{made.dataset.dataset_id}/tasks/{tid}/task_stats")) == 403
