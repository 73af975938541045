"""Pickup by idle pilots (issue 12 item 5): the real ``frazil server`` as a
subprocess on 127.0.0.1 with SQLite, 64 simulated pilots over HTTP (as
benchmarks/claim.py's) that sat idle, each in a claim that waits on the
server for work (``wait``: 20 s, the pilot's default), completing what it
gets at once.

(a) queued → claim: a new dataset's 64 tasks are queued (POST
    /task_actions/queue_many); the time from that request to each task's
    claim reply, median and p99 over ``--rounds`` datasets. The server's
    loops run with a 1 h interval here so nothing but that request queues.
(b) ready → claim: the same with the real queue loop at its default 2 s
    interval: the tasks are written as ``waiting`` (ready to queue) and the
    loop queues them; this includes the wait for the loop's next round.
(c) idle cost: the server's CPU time (its own counters) over a window in
    which the 64 pilots wait with nothing to claim, minus the same window
    with no pilot, as % of one core.

    python -m benchmarks.pickup [--pilots 64] [--rounds 10] [--idle 20] [--repeat 3]

prints one JSON line (each figure the median of the repeats, and every run).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from typing import Any

import aiohttp
import psutil

from benchmarks.claim import PILOT_RESOURCES, TASK_CONFIG, _cpu_seconds, _register, _session
from benchmarks.server_process import ServerProcess

WAIT = 20.0


class Pilots:
    """``n`` simulated idle pilots: claim (waiting on the server) → complete → claim ..."""

    def __init__(self, session: aiohttp.ClientSession, url: str, ids: list[str]) -> None:
        self.session, self.url, self.ids = session, url, ids
        self.claimed: dict[str, float] = {}
        self.requests = 0
        self.errors: list[str] = []
        self._runs: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._runs = [asyncio.ensure_future(self._run(i)) for i in self.ids]

    async def stop(self) -> None:
        for run in self._runs:
            run.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    async def _run(self, pilot_id: str) -> None:
        body = {"pilot_id": pilot_id, "resources": PILOT_RESOURCES, "site": "bench", "wait": WAIT}
        while True:
            self.requests += 1
            try:
                task = await self._claim(body)
                if task is None:
                    await asyncio.sleep(random.uniform(0.0, 0.2))  # as the pilot does after a held claim
                    continue
                self.claimed[task["task_id"]] = time.time()
                async with self.session.post(f"{self.url}/tasks/{task['task_id']}/task_actions/complete",
                                             json={"instance_id": task["instance_id"], "time_used": 1.0}) as r:
                    await r.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.errors.append(repr(exc))
                await asyncio.sleep(1.0)

    async def _claim(self, body: dict[str, Any]) -> dict[str, Any] | None:
        async with self.session.post(f"{self.url}/task_actions/process", json=body) as r:
            if r.status == 200:
                return dict(await r.json())
            await r.read()
            if r.status != 404:
                raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
            return None


async def _new_dataset(db_url: str, tasks: int, status: str) -> tuple[str, list[str]]:
    """A processing dataset of ``tasks`` one-task jobs, written as ``status``."""
    from server.store import NewDataset, NewJob, NewTask, open_store

    req = TASK_CONFIG["tasks"][0]["requirements"]
    jobs = [NewJob(job_index=i, tasks=[NewTask(name="noop", task_index=0, requirements=dict(req), status=status)])
            for i in range(tasks)]
    store = await open_store(db_url)
    try:
        ds = await store.create_dataset(NewDataset(description="pickup benchmark", jobs_submitted=tasks,
                                                   tasks_per_job=1, group="users", username="bench"))
        await store.create_jobs(ds.dataset_id, jobs, await store.add_config_version(ds.dataset_id, TASK_CONFIG,
                                                                                    "bench"))
    finally:
        await store.close()
    return ds.dataset_id, [j.tasks[0].task_id for j in jobs]


async def _picked_up(pilots: Pilots, ids: list[str], since: float, timeout: float = 60.0) -> list[float]:
    deadline = time.monotonic() + timeout
    while not all(i in pilots.claimed for i in ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sum(i in pilots.claimed for i in ids)} of {len(ids)} tasks claimed")
        await asyncio.sleep(0.02)
    return [pilots.claimed[i] - since for i in ids]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def one_run(workdir: str, n_pilots: int, rounds: int, idle: float, loop_interval: float,
                  via_loop: bool) -> dict[str, Any]:
    db_url = f"sqlite:///{workdir}/frazil.db"
    server = ServerProcess(db_url, f"{workdir}/data", env={
        "FRAZIL_LOOP_INTERVAL_SECONDS": str(loop_interval), "FRAZIL_LOG_LEVEL": "warning",
        "FRAZIL_CLAIM_RATE_PER_PILOT": "1000", "FRAZIL_HEARTBEAT_SECONDS": "600", "FRAZIL_LEASE_SECONDS": "1800"})
    server.start()
    try:
        proc = psutil.Process(server.pid)
        admin = server.token("bench-admin", role="admin")
        pilot_token = server.token("bench-pilot", role="system")
        out: dict[str, Any] = {}
        await asyncio.sleep(2.0)  # the loops' first rounds
        if not via_loop:
            cpu0 = _cpu_seconds(proc)
            await asyncio.sleep(idle)
            out["baseline_cpu_pct"] = 100 * (_cpu_seconds(proc) - cpu0) / idle
        async with _session(pilot_token) as session, _session(admin) as admin_session:
            ids = await _register(session, server.url, n_pilots)
            pilots = Pilots(session, server.url, ids)
            pilots.start()
            await asyncio.sleep(2.0)  # every pilot is waiting in a claim now
            if not via_loop:
                cpu0, requests0 = _cpu_seconds(proc), pilots.requests
                await asyncio.sleep(idle)
                out["idle_cpu_pct"] = 100 * (_cpu_seconds(proc) - cpu0) / idle
                out["idle_pilot_cost_pct"] = out["idle_cpu_pct"] - out["baseline_cpu_pct"]
                out["idle_requests_per_s"] = (pilots.requests - requests0) / idle
            latencies: list[float] = []
            for _ in range(rounds):
                dataset_id, task_ids = await _new_dataset(db_url, n_pilots, "waiting")
                since = time.time()
                if not via_loop:
                    async with admin_session.post(f"{server.url}/task_actions/queue_many", json={
                            "num": n_pilots, "query_params": {"dataset_id": dataset_id}}) as r:
                        r.raise_for_status()
                        assert len(await r.json()) == n_pilots
                latencies.extend(await _picked_up(pilots, task_ids, since))
                await asyncio.sleep(random.uniform(0.5, 1.0))  # idle again between datasets
            await pilots.stop()
        out["pilot_errors"] = len(pilots.errors)
        out.update(median_s=statistics.median(latencies), p99_s=_pct(latencies, 0.99), max_s=max(latencies),
                   samples=len(latencies))
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pilots", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of each idle CPU window")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"queued_to_claim": [], "ready_to_claim_loop": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="frazil-pickup-") as tmp:
            runs["queued_to_claim"].append(asyncio.run(one_run(f"{tmp}/a", args.pilots, args.rounds, args.idle,
                                                               3600.0, via_loop=False)))
        with tempfile.TemporaryDirectory(prefix="frazil-pickup-") as tmp:
            runs["ready_to_claim_loop"].append(asyncio.run(one_run(f"{tmp}/b", args.pilots, args.rounds, args.idle,
                                                                   2.0, via_loop=True)))
    summary: dict[str, Any] = {"pilots": args.pilots, "rounds": args.rounds, "claim_wait_s": WAIT,
                               "loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    for name, results in runs.items():
        keys = [k for k in results[0] if isinstance(results[0][k], (int, float))]
        summary[name] = {k: round(statistics.median(r[k] for r in results), 4) for k in keys}
    summary["runs"] = runs
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
