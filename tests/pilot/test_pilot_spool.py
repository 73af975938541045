"""The report spool and live log streaming against the real server (in-process,
real SQLite): order, stale results dropped, an unreachable server costs nothing."""
from __future__ import annotations

import json
from pathlib import Path

from pilot.api import ServerApi
from pilot.logstream import TaskLogs
from pilot.spool import Spool
from tests.server.conftest import RunningServer, free_port, server, server_settings  # noqa: F401 (fixtures)
from tests.server.test_api_pilot_support import claim, make_dataset, register


async def _claimed(server: RunningServer) -> tuple[ServerApi, dict]:
    await make_dataset(server.store)
    token = server.token("pilot-1", role="pilot")
    rc = server.rest(token)
    task = await claim(rc, await register(rc))
    return ServerApi(server.url, token), task


def _dead_api() -> ServerApi:
    return ServerApi(f"http://127.0.0.1:{free_port()}", "token", timeout=2)


async def test_spool_delivers_in_order_and_drops_a_stale_result(server: RunningServer, tmp_path: Path) -> None:
    api, task = await _claimed(server)
    tid = task["task_id"]
    spool = Spool(tmp_path / "spool")
    spool.add("POST", f"/tasks/{tid}/task_actions/complete", {"instance_id": "not-the-claim"}, "stale")
    spool.add("POST", f"/tasks/{tid}/task_stats", {"instance_id": "not-the-claim"})  # dropped with it
    spool.add("POST", f"/tasks/{tid}/task_actions/complete", {"instance_id": task["instance_id"], "time_used": 1})
    assert await spool.deliver(api)
    spool.add("POST", f"/tasks/{tid}/task_stats", {"status": "complete"})  # a later round: delivered
    assert await spool.deliver(api)
    await api.close()
    assert (spool.delivered, spool.dropped, len(spool)) == (2, 2, 0)
    assert (await server.store.get_task(tid)).status == "complete"
    stats = (await server.store.list_task_stats(task_id=tid)).rows
    assert [doc["stats"] for doc in stats] == [{"status": "complete"}]


async def test_unreachable_server_keeps_everything_in_order(server: RunningServer, tmp_path: Path) -> None:
    api, task = await _claimed(server)
    tid = task["task_id"]
    spool = Spool(tmp_path / "spool")
    first = spool.add("POST", f"/tasks/{tid}/task_stats", {"n": 1})
    spool.add("POST", f"/tasks/{tid}/task_actions/complete", {"instance_id": task["instance_id"]})
    dead = _dead_api()
    assert not await spool.deliver(dead)
    await dead.close()
    assert len(spool) == 2 and json.loads(first.read_text())["body"] == {"n": 1}
    # A pilot restarted in the same work dir continues the numbering and delivers the rest.
    again = Spool(tmp_path / "spool")
    later = again.add("POST", f"/tasks/{tid}/task_stats", {"n": 2})
    assert [e.path for e in again.pending()][-1] == later and len(again) == 3
    assert await again.deliver(api)
    await api.close()
    assert [doc["stats"] for doc in (await server.store.list_task_stats(task_id=tid)).rows] == [{"n": 1}, {"n": 2}]
    assert not list((tmp_path / "spool").iterdir())  # no temporary files left either


async def test_logs_stream_in_batches_and_stop_when_the_claim_is_gone(server: RunningServer, tmp_path: Path) -> None:
    api, task = await _claimed(server)
    tid = task["task_id"]
    logs = TaskLogs(api, tid, task["instance_id"], interval=60)
    for line in ("one\n", "two\n"):
        await logs.feed("stdout", line)
    await logs.flush()
    await logs.feed("stdout", "three\n")
    await logs.feed("stderr", "oops\n")
    await logs.flush()
    stored = {log.name: log.data for log in await server.store.task_logs(tid)}
    assert stored == {"stdout": "one\ntwo\nthree\n", "stderr": "oops\n"}
    reply = await api.call("POST", f"/tasks/{tid}/task_actions/complete", {"instance_id": task["instance_id"]})
    assert reply.ok
    await logs.feed("stdout", "late\n")
    await logs.flush()  # 409: the attempt is over; that log is closed
    await logs.feed("stdout", "later\n")
    await logs.finish(Spool(tmp_path / "spool"))
    await api.close()
    assert {log.name: log.data for log in await server.store.task_logs(tid)}["stdout"] == "one\ntwo\nthree\n"
    assert not list((tmp_path / "spool").glob("*.json"))


async def test_logs_unsent_while_the_server_is_away_go_to_the_spool(server: RunningServer, tmp_path: Path) -> None:
    api, task = await _claimed(server)
    tid = task["task_id"]
    dead = _dead_api()
    logs = TaskLogs(dead, tid, task["instance_id"], interval=60)
    await logs.feed("stdlog", "staged in\n")
    await logs.feed("stdlog", "module ended\n")
    spool = Spool(tmp_path / "spool")
    await logs.finish(spool)
    await dead.close()
    assert [e.route for e in spool.pending()] == [f"/tasks/{tid}/logs"]
    assert await spool.deliver(api)
    await api.close()
    assert {log.name: log.data for log in await server.store.task_logs(tid)} == {"stdlog": "staged in\nmodule ended\n"}
