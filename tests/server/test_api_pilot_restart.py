"""Kill -9 the real ``frazil server`` while pilots report, restart it on the
same store: every report is then accepted or fenced, no task is lost and none
completes twice."""
from __future__ import annotations

import asyncio
import os
import pathlib
import sys
import time
from typing import AsyncIterator

import aiohttp
import pytest

from server.auth import TokenAuthority, load_or_create_key
from server.store import Store, open_store
from tests.server.conftest import free_port
from tests.server.test_api_pilot_support import PILOT_RESOURCES, make_dataset


class ServerProcess:
    """``python -m server.cli server`` on a SQLite file, loops off (the test
    drives queueing and lease expiry itself)."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self.db = f"sqlite:///{folder}/frazil.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        key = load_or_create_key(folder / "data" / "auth.key")
        self.token = TokenAuthority(key).create("pilot-1", role="pilot")

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
        env.update(FRAZIL_DATA_DIR=str(self.folder / "data"), FRAZIL_LOOPS="false", FRAZIL_CLAIM_RATE_PER_PILOT="0")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "server", "--db", self.db, "--port", str(self.port),
            "--provider", "none", env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=open(self.folder / "server.log", "ab"))
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc.returncode is None, (self.folder / "server.log").read_text()
                try:
                    async with session.get(f"{self.url}/healthz") as reply:
                        if reply.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("server did not start: " + (self.folder / "server.log").read_text())

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown code runs
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


@pytest.fixture
async def running(tmp_path: pathlib.Path) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(tmp_path)
    try:
        yield proc
    finally:
        await proc.stop()


async def _post(session: aiohttp.ClientSession, path: str, body: dict) -> int:
    try:
        async with session.post(path, json=body) as reply:
            await reply.read()
            return reply.status
    except aiohttp.ClientError:
        return 0  # the server died under this request


async def _claim(session: aiohttp.ClientSession, pilot_id: str) -> dict:
    async with session.post("/task_actions/process", json={"pilot_id": pilot_id, "resources": PILOT_RESOURCES}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _register(session: aiohttp.ClientSession) -> str:
    async with session.post("/pilots", json={"resources": PILOT_RESOURCES, "hostname": "n1"}) as reply:
        return (await reply.json())["result"]


async def _store(proc: ServerProcess) -> Store:
    return await open_store(proc.db)


async def test_kill_9_mid_reports_then_restart(running: ServerProcess):
    jobs = 60
    store = await _store(running)
    made = await make_dataset(store, jobs=jobs)
    await store.close()
    await running.start()
    headers = {"Authorization": f"Bearer {running.token}"}
    answers: dict[str, int] = {}
    async with aiohttp.ClientSession(running.url, headers=headers) as session:
        pilot_id = await _register(session)
        claims = [await _claim(session, pilot_id) for _ in range(jobs)]
        queue: asyncio.Queue[dict] = asyncio.Queue()
        for c in claims:
            queue.put_nowait(c)

        async def reporter() -> None:  # four task slots reporting as their tasks end
            while not queue.empty():
                c = queue.get_nowait()
                answers[c["task_id"]] = await _post(session, f"/tasks/{c['task_id']}/task_actions/complete",
                                                    {"instance_id": c["instance_id"], "time_used": 60})
                if answers[c["task_id"]] == 0:
                    return

        workers = [asyncio.ensure_future(reporter()) for _ in range(4)]
        while sum(1 for a in answers.values() if a == 200) < 10:
            await asyncio.sleep(0.002)
        await running.kill()  # mid-run: some reports answered, some in flight, the rest never sent
        await asyncio.gather(*workers)
    assert set(answers.values()) <= {200, 0} and 10 <= list(answers.values()).count(200) < jobs

    await running.start()  # same store, same key: the pilot's token still works
    async with aiohttp.ClientSession(running.url, headers=headers) as session:
        # the pilot re-sends every report whose answer it did not get (and, to be sure, the others too)
        again = [await _post(session, f"/tasks/{c['task_id']}/task_actions/complete",
                             {"instance_id": c["instance_id"], "time_used": 60}) for c in claims]
    assert again == [200] * jobs
    store = await _store(running)
    try:
        for task_id in made.task_ids:
            task = await store.get_task(task_id)
            attempts = await store.get_attempts(task_id)
            assert task.status == "complete" and [a.status for a in attempts] == ["complete"], task_id
        assert (await store.get_dataset(made.dataset.dataset_id)).status == "complete"
    finally:
        await store.close()


async def test_after_restart_held_claims_report_and_reaped_ones_are_fenced(running: ServerProcess):
    store = await _store(running)
    made = await make_dataset(store, jobs=2)
    await store.close()
    await running.start()
    headers = {"Authorization": f"Bearer {running.token}"}
    async with aiohttp.ClientSession(running.url, headers=headers) as session:
        old_pilot = await _register(session)
        kept, lost = [await _claim(session, old_pilot) for _ in range(2)]
    await running.kill()
    await running.start()

    store = await _store(running)  # the lease reaper, run by hand while the server is up
    try:
        # the pilot kept heartbeating for one task only; the other's lease runs out
        assert await store.renew_leases(old_pilot, [kept["task_id"]], 3600) == [kept["task_id"]]
        assert await store.expire_leases(now=time.time() + 1200) == [lost["task_id"]]
        await store.queue_tasks(10)
    finally:
        await store.close()
    async with aiohttp.ClientSession(running.url, headers=headers) as session:
        new_pilot = await _register(session)
        retry = await _claim(session, new_pilot)
        assert retry["task_id"] == lost["task_id"] and retry["attempt"] == 2
        assert await _post(session, f"/tasks/{lost['task_id']}/task_actions/complete",
                           {"instance_id": lost["instance_id"], "time_used": 1}) == 409
        assert await _post(session, f"/tasks/{kept['task_id']}/task_actions/complete",
                           {"instance_id": kept["instance_id"], "time_used": 1}) == 200
        assert await _post(session, f"/tasks/{retry['task_id']}/task_actions/complete",
                           {"instance_id": retry["instance_id"], "time_used": 1}) == 200
    store = await _store(running)
    try:
        assert [a.status for a in await store.get_attempts(lost["task_id"])] == ["lost", "complete"]
        assert [a.status for a in await store.get_attempts(kept["task_id"])] == ["complete"]
        assert {(await store.get_task(t)).status for t in made.task_ids} == {"complete"}
    finally:
        await store.close()
