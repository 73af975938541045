"""Pilot overhead (DESIGN.md §5: ≤ 20 ms per no-op task; monitoring ≤ 1% of a core
with 16 running tasks).

A real ``frazil server`` process on 127.0.0.1 (SQLite store) holds a dataset of
no-op jobs (``/bin/true``). One in-process pilot with a one-core slot runs them
one after another exactly as ``frazil pilot`` does (claim, plan, work dir,
module, live logs, spool, report, stats). For every task:

* ``claim_to_start_ms``: the claim request leaves → the module process starts;
* ``end_to_report_ms``: the module exits → the server answered the result;
* ``overhead_ms``: their sum, the pilot's cost per task (the module's own run
  time is not counted).

Medians and p90 over ``--tasks`` tasks, plus the CPU the pilot process and
the server process spent per task (steadier than wall times on a busy
machine; the load average is printed too). The monitor's CPU share with 16
running tasks comes from :mod:`benchmarks.pilot_monitor` (same code path).

    python -m benchmarks.pilot [--tasks 300] [--monitor-seconds 20]

prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.server_process import ServerProcess
from benchmarks.pilot_monitor import measure as measure_monitor
from pilot.api import Reply, ServerApi
from pilot.detect import Flags, detect_slot
from pilot.pilot import Pilot, PilotConfig
from server.store import NewDataset, TaskFilter, open_store

TARGET_MS = 20.0
CONFIG = {"version": 3.2, "tasks": [{"name": "noop", "requirements": {"memory": 0.01, "disk": 0.01, "time": 0.1},
                                     "trays": [{"modules": [{"src": "/bin/true"}]}]}]}


class TimedApi(ServerApi):
    """Notes when each claim left and when each result was answered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claim_sent: dict[str, float] = {}
        self.reported: dict[str, float] = {}

    async def call(self, method: str, path: str, body: Any = None) -> Reply:
        sent = time.time()
        reply = await super().call(method, path, body)
        if path == "/task_actions/process" and reply.status == 200:
            self.claim_sent[reply.data["task_id"]] = sent
        elif path.endswith("/task_actions/complete") and reply.ok:
            self.reported[path.split("/")[2]] = time.time()
        return reply


async def _dataset(db: str, jobs: int) -> str:
    store = await open_store(db)
    try:
        ds = await store.create_dataset(NewDataset(description="pilot benchmark", jobs_submitted=jobs,
                                                   tasks_per_job=1, group="users", username="bench"))
        await store.add_config_version(ds.dataset_id, CONFIG, "bench")
        deadline = time.monotonic() + 120
        while (await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id))).get("queued", 0) < jobs:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not queue the benchmark's tasks in 120 s")
            await asyncio.sleep(0.2)
        return ds.dataset_id
    finally:
        await store.close()


async def _module_times(db: str, dataset_id: str) -> dict[str, tuple[float, float]]:
    store = await open_store(db)
    try:
        out = {}
        for row in (await store.list_tasks(TaskFilter(dataset_id=dataset_id))).rows:
            attempts = await store.get_attempts(row["task_id"])
            module = attempts[-1].modules[0]
            out[row["task_id"]] = (module["start"], module["end"])
        return out
    finally:
        await store.close()


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 2),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2)}


async def measure_pilot(tasks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="frazil-bench-pilot-") as base:
        root = Path(base)
        db = f"sqlite:///{root}/frazil.db"
        server = ServerProcess(db, root / "data", env={"FRAZIL_LOOP_INTERVAL_SECONDS": "0.2",
                                                       "FRAZIL_CLAIM_RATE_PER_PILOT": "100000",
                                                       "FRAZIL_LOG_LEVEL": "warning"})
        server.start()
        try:
            token = server.token("bench-pilot", role="pilot")
            dataset_id = await _dataset(db, tasks)
            workdir = root / "pilot"
            workdir.mkdir()
            slot = detect_slot(workdir, Flags(cpus=1, gpus=0, memory=1, disk=10))
            pilot = Pilot(PilotConfig(url=server.url, token=token, workdir=workdir, slot=slot, idle_timeout=2,
                                      max_backoff=0.5))
            timed = TimedApi(server.url, token)
            pilot.api = timed
            server_proc = psutil.Process(server.pid)
            server_cpu = sum(server_proc.cpu_times()[:2])
            cpu, started = time.process_time(), time.monotonic()
            await pilot.run()
            wall = time.monotonic() - started
            pilot_cpu = time.process_time() - cpu
            server_cpu = sum(server_proc.cpu_times()[:2]) - server_cpu
            modules = await _module_times(db, dataset_id)
        finally:
            server.stop()
    done = [t for t in modules if t in timed.claim_sent and t in timed.reported]
    to_start = [(modules[t][0] - timed.claim_sent[t]) * 1000 for t in done]
    to_report = [(timed.reported[t] - modules[t][1]) * 1000 for t in done]
    overhead = [a + b for a, b in zip(to_start, to_report)]
    return {
        "tasks": tasks,
        "completed": pilot.counters.complete,
        "wall_s": round(wall, 2),
        "claim_to_start_ms": _summary(to_start),
        "end_to_report_ms": _summary(to_report),
        "overhead_ms": _summary(overhead),
        "pilot_cpu_ms_per_task": round(pilot_cpu / max(len(done), 1) * 1000, 2),
        "server_cpu_ms_per_task": round(server_cpu / max(len(done), 1) * 1000, 2),
        "load_average": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
        "target_ms": TARGET_MS,
        "meets_target": statistics.median(overhead) <= TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--monitor-tasks", type=int, default=16)
    parser.add_argument("--monitor-seconds", type=float, default=20.0)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "pilot", **asyncio.run(measure_pilot(args.tasks))}
    monitor = asyncio.run(measure_monitor(args.monitor_tasks, args.monitor_seconds, 1.0))
    result["monitor"] = {key: monitor[key] for key in ("tasks", "monitor_cpu_share", "process_cpu_share",
                                                       "target_share", "meets_target", "host_processes")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
