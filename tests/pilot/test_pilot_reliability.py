"""DESIGN.md §6 with real pilot processes: a pilot killed with -9, a server that
goes away mid-run, SIGTERM (eviction), drain, and a slot's lifetime."""
from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from rest_tools.client import RestClient

from tests.pilot.pilot_support import Deployment, attempts_of, deploy, tasks_of, wait_for, with_store

SLEEPER = textwrap.dedent("""
    import sys, time
    print("start", sys.argv[1], flush=True)
    time.sleep(float(sys.argv[2]))
    open(sys.argv[3], "w").write("job " + sys.argv[1] + "\\n")
    print("done", flush=True)
""")


def _config(tmp: Path, seconds: float, outputs: Path, time_hours: float = 0.5) -> dict[str, Any]:
    """Each job sleeps, then writes ``out.txt`` that goes to a plain directory
    (not the server's scratch store, so the work can finish while the server is away)."""
    script = tmp / "sleeper.py"
    script.write_text(SLEEPER)
    outputs.mkdir(exist_ok=True)
    return {"version": 3.2, "tasks": [{
        "name": "sleep", "requirements": {"memory": 0.05, "time": time_hours},
        "data": [{"type": "permanent", "movement": "output", "local": "out.txt",
                  "remote": f"{outputs.as_uri()}/out_$(job).txt"}],
        "trays": [{"modules": [{"src": str(script), "args": f"$(job) {seconds} out.txt"}]}]}]}


async def _all_complete(d: Deployment, dataset_id: str, count: int) -> bool:
    rows = await tasks_of(d.db, dataset_id)
    return len(rows) == count and all(row["status"] == "complete" for row in rows)


async def _processing(d: Deployment, dataset_id: str, count: int) -> bool:
    rows = await tasks_of(d.db, dataset_id)
    return sum(row["status"] == "processing" for row in rows) >= count


async def _exactly_once(d: Deployment, dataset_id: str) -> list[list[Any]]:
    """Every task complete once: one complete attempt, and it is the last."""
    everything = []
    for row in await tasks_of(d.db, dataset_id):
        attempts = await attempts_of(d.db, row["task_id"])
        assert [a.status for a in attempts].count("complete") == 1, attempts
        assert attempts[-1].status == "complete" and all(a.end for a in attempts)
        everything.append(attempts)
    return everything


@pytest.mark.slow
async def test_kill_9_pilot_tasks_return_after_the_lease_and_finish_on_another(tmp_path: Path) -> None:
    d = deploy(tmp_path, FRAZIL_LEASE_SECONDS="3")
    try:
        dataset_id = await d.submit(_config(tmp_path, 3.0, tmp_path / "out"), jobs=2)
        first = d.pilot("p1", "--cpus", "2", "--memory", "1", "--disk", "5", "--idle-timeout", "30")
        await wait_for(lambda: _processing(d, dataset_id, 2), 30, "both tasks claimed by p1",
                       lambda: d.log("p1")[-3000:])
        d.kill_pilot(first)
        d.pilot("p2", "--cpus", "2", "--memory", "1", "--disk", "5", "--idle-timeout", "30")
        await wait_for(lambda: _all_complete(d, dataset_id, 2), 60, "the tasks to finish on p2",
                       lambda: d.log("p2")[-3000:])
        for attempts in await _exactly_once(d, dataset_id):
            lost, done = attempts[0], attempts[-1]
            assert lost.status != "complete" and lost.pilot_id != done.pilot_id
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["out_0.txt", "out_1.txt"]
    finally:
        d.stop_all()


@pytest.mark.slow
async def test_server_away_mid_run_reports_are_spooled_and_delivered_once(tmp_path: Path) -> None:
    d = deploy(tmp_path)
    try:
        dataset_id = await d.submit(_config(tmp_path, 2.0, tmp_path / "out"), jobs=3)
        d.pilot("p1", "--cpus", "3", "--memory", "1", "--disk", "5", "--idle-timeout", "60")
        await wait_for(lambda: _processing(d, dataset_id, 3), 30, "all tasks claimed",
                       lambda: d.log("p1")[-3000:])
        d.server.kill()
        spool = tmp_path / "p1" / "spool"

        async def spooled() -> bool:  # a result and a stats document per task, at least
            return len(list(spool.glob("*.json"))) >= 6

        await wait_for(spooled, 30, "the results to be spooled", lambda: d.log("p1")[-3000:])
        time.sleep(3)  # the pilot keeps retrying against a dead address meanwhile
        d.server.start()
        await wait_for(lambda: _all_complete(d, dataset_id, 3), 60, "the spooled results to arrive",
                       lambda: d.log("p1")[-3000:])
        await wait_for(lambda: _spool_empty(spool), 20, "the spool to empty")
        for attempts in await _exactly_once(d, dataset_id):
            assert len(attempts) == 1  # the leases outlived the outage: nothing ran twice
        for row in await tasks_of(d.db, dataset_id):
            stats = (await with_store(d.db, lambda s: s.list_task_stats(task_id=row["task_id"]))).rows
            assert len(stats) == 1, stats  # delivered once, not doubled
            logs = await with_store(d.db, lambda s: s.task_logs(row["task_id"]))
            stdout = "".join(entry.data for entry in logs if entry.name == "stdout")
            assert stdout.count("start") == 1 and stdout.count("done") == 1, stdout
    finally:
        d.stop_all()


async def _spool_empty(spool: Path) -> bool:
    return not list(spool.glob("*.json"))


@pytest.mark.slow
async def test_sigterm_ends_tasks_as_eviction_and_deregisters(tmp_path: Path) -> None:
    d = deploy(tmp_path)
    try:
        dataset_id = await d.submit(_config(tmp_path, 120.0, tmp_path / "out"), jobs=1)
        pilot = d.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "60")
        await wait_for(lambda: _processing(d, dataset_id, 1), 30, "the task to start",
                       lambda: d.log("p1")[-3000:])
        [row] = await tasks_of(d.db, dataset_id)

        async def streamed() -> bool:  # live: the module is still sleeping
            logs = await with_store(d.db, lambda s: s.task_logs(row["task_id"]))
            return any("start 0" in entry.data for entry in logs if entry.name == "stdout")

        await wait_for(streamed, 10, "the module's first line on the server", lambda: d.log("p1")[-3000:])
        pilot.send_signal(signal.SIGTERM)
        assert pilot.wait(timeout=30) == 0, d.log("p1")[-3000:]
        [row] = await tasks_of(d.db, dataset_id)
        [attempt] = await attempts_of(d.db, row["task_id"])
        assert (attempt.status, attempt.kind) == ("reset", "eviction"), attempt
        assert row["status"] in ("waiting", "queued")  # back in the queue, no retry used up
        assert await with_store(d.db, lambda s: s.list_pilots()) == []  # deregistered (DELETE /pilots/{id})
        assert "evicted=1" in d.log("p1")
    finally:
        d.stop_all()


@pytest.mark.slow
async def test_drain_finishes_the_running_task_then_exits(tmp_path: Path) -> None:
    d = deploy(tmp_path)
    try:
        dataset_id = await d.submit(_config(tmp_path, 3.0, tmp_path / "out"), jobs=3)
        pilot = d.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "60")
        await wait_for(lambda: _processing(d, dataset_id, 1), 30, "a task to start", lambda: d.log("p1")[-3000:])
        [pilot_doc] = await with_store(d.db, lambda s: s.list_pilots())
        admin = RestClient(d.server.url, d.server.token("root", role="admin"), retries=0)
        await admin.request("PATCH", f"/pilots/{pilot_doc.pilot_id}", {"drain": True})
        assert pilot.wait(timeout=30) == 0, d.log("p1")[-3000:]
        statuses = sorted(row["status"] for row in await tasks_of(d.db, dataset_id))
        assert statuses.count("complete") == 1 and "processing" not in statuses, statuses
        assert "(drained)" in d.log("p1")
    finally:
        d.stop_all()


async def test_no_claim_beyond_the_slot_lifetime_and_exit_before_it_ends(tmp_path: Path) -> None:
    d = deploy(tmp_path)
    try:
        dataset_id = await d.submit(_config(tmp_path, 1.0, tmp_path / "out", time_hours=1.0), jobs=1)
        started = time.monotonic()
        pilot = d.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--time", "4s",
                        "--lifetime-margin", "1", "--idle-timeout", "60")
        assert pilot.wait(timeout=30) == 0, d.log("p1")[-3000:]
        assert time.monotonic() - started < 20
        assert "(lifetime)" in d.log("p1")
        [row] = await tasks_of(d.db, dataset_id)
        assert row["status"] != "processing" and not await attempts_of(d.db, row["task_id"])
    finally:
        d.stop_all()


async def test_a_forgotten_pilot_registers_again_and_keeps_working(tmp_path: Path) -> None:
    d = deploy(tmp_path)
    try:
        d.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "60")

        async def registered() -> bool:
            return len(await with_store(d.db, lambda s: s.list_pilots())) == 1

        await wait_for(registered, 30, "the pilot to register", lambda: d.log("p1")[-3000:])
        [first] = await with_store(d.db, lambda s: s.list_pilots())
        admin = RestClient(d.server.url, d.server.token("root", role="admin"), retries=0)
        await admin.request("DELETE", f"/pilots/{first.pilot_id}")
        await wait_for(lambda: _registered_again(d, first.pilot_id), 30, "a registration again",
                       lambda: d.log("p1")[-3000:])
        dataset_id = await d.submit(_config(tmp_path, 0.2, tmp_path / "out"), jobs=1)
        await wait_for(lambda: _all_complete(d, dataset_id, 1), 30, "the task", lambda: d.log("p1")[-3000:])
        assert f"the server forgot pilot {first.pilot_id}; registering again" in d.log("p1")
    finally:
        d.stop_all()


async def _registered_again(d: Deployment, old: str) -> bool:
    """The deleted pilot is back: its token is bound to its id, so it registers under the same one."""
    pilots = await with_store(d.db, lambda s: s.list_pilots())
    return len(pilots) == 1 and pilots[0].pilot_id == old and pilots[0].state == "active"
