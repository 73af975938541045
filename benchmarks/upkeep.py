"""The production upkeep loops at size (issue 16 items 6, 7, 3), in-process
on SQLite (durable commits off while building; the loops run as in a server).

* ``retention_idle``: a log-retention round with nothing old enough (walks
  each log name's index range: what most hourly rounds cost), median of 3;
* ``retention_remove``: removing every log (``--logs``, half stdout, half
  stdlog) as the loop does, rounds until done: wall and CPU per 1,000 logs;
* ``dataset_metrics``: one recount of the per-dataset gauges over
  ``--datasets`` processing datasets of ``--tasks`` tasks each, median of 3;
* ``quarantine_round``: one quarantine look over ``--attempts`` attempts
  that ended in the last hour, median of 3.

Each reports wall ms and the process's CPU ms (all threads). Prints one JSON line.

    python -m benchmarks.upkeep [--logs 50000] [--datasets 50] [--tasks 2000] [--attempts 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from typing import Any, Awaitable, Callable

from common.resources import Resources
from server.metrics import ServerMetrics
from server.scheduling.monitor import DatasetMonitor
from server.scheduling.quarantine import QuarantineWatch
from server.scheduling.retention import LogRetention
from server.settings import Settings
from server.store import AttemptResult, ClaimRequest, NewDataset, NewJob, NewLog, NewPilot, NewTask, Store, open_store

DAY = 86_400.0


async def timed(call: Callable[[], Awaitable[Any]], repeat: int = 3) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(repeat):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await call()
        walls.append((time.perf_counter() - wall0) * 1000)
        cpus.append((time.process_time() - cpu0) * 1000)
    return {"wall_ms": round(statistics.median(walls), 1), "cpu_ms": round(statistics.median(cpus), 1)}


async def build_datasets(store: Store, datasets: int, tasks: int) -> list[str]:
    ids = []
    for _ in range(datasets):
        ds = await store.create_dataset(NewDataset(description="upkeep bench", jobs_submitted=tasks,
                                                   tasks_per_job=1, group="users", username="alice"))
        jobs = [NewJob(j, [NewTask("work", 0, {"cpu": 1}, status="queued")]) for j in range(tasks)]
        await store.create_jobs(ds.dataset_id, jobs)
        ids.append(ds.dataset_id)
    return ids


async def build_attempts(store: Store, attempts: int) -> None:
    """Claim + report cycles on two hosts: one fails everything non-physically."""
    free = Resources(cpu=8, gpu=0, memory=16.0, disk=100.0, time=24.0)
    pilots = {host: await store.register_pilot(NewPilot(resources={"cpu": 8}, hostname=host, site="S"))
              for host in ("bad", "good")}
    for n in range(attempts):
        host = "bad" if n % 2 else "good"
        claimed = await store.claim(ClaimRequest(pilot_id=pilots[host], free=free, host=host, site="S"))
        if claimed is None:
            break
        if host == "good":
            await store.complete(claimed.task.task_id, claimed.instance_id, AttemptResult(time_used=60))
        else:
            await store.reset(claimed.task.task_id, claimed.instance_id, AttemptResult(time_used=5))
            await store.queue_tasks(10, dataset_id=claimed.task.dataset_id)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite:///{tmp}/bench.db", durable=False)
        settings = Settings(db="", data_dir=tmp, provider="none", log_cleanup_batch=1000,
                            dataset_metrics_seconds=0.0, dataset_metrics_max=args.datasets,
                            quarantine_scan_max=max(args.attempts * 2, 1000))
        try:
            ids = await build_datasets(store, args.datasets, args.tasks)
            for n in range(args.logs):
                await store.add_log(NewLog("stdout" if n % 2 else "stdlog", "x" * 200, dataset_id=ids[n % len(ids)],
                                           task_id=f"t{n}"))
            retention = LogRetention(store, settings, ServerMetrics())
            now = time.time()
            out: dict[str, Any] = {"logs": args.logs, "datasets": args.datasets, "tasks_per_dataset": args.tasks,
                                   "attempts": args.attempts, "load_avg": os.getloadavg()[0]}
            out["retention_idle"] = await timed(lambda: retention.run(now + DAY))
            cpu0, wall0 = time.process_time(), time.perf_counter()
            rounds = 1
            while await retention.run(now + 400 * DAY):
                rounds += 1
            wall, cpu = (time.perf_counter() - wall0) * 1000, (time.process_time() - cpu0) * 1000
            assert sum(retention.report.removed.values()) == args.logs
            out["retention_remove"] = {"rounds": rounds, "wall_ms": round(wall, 1), "cpu_ms": round(cpu, 1),
                                       "wall_ms_per_1000": round(wall * 1000 / max(args.logs, 1), 1),
                                       "cpu_ms_per_1000": round(cpu * 1000 / max(args.logs, 1), 1)}
            monitor = DatasetMonitor(store, settings, ServerMetrics())

            async def recount() -> None:
                monitor._next = 0.0  # due now: each repeat counts
                await monitor.refresh()
            out["dataset_metrics"] = await timed(recount)
            assert len(monitor.metrics.datasets.snapshot.tasks) == args.datasets
            await build_attempts(store, args.attempts)
            watch = QuarantineWatch(store, settings)
            out["quarantine_round"] = await timed(watch.run)
            out["quarantined"] = [f"{q.kind} {q.name}" for q in watch.recorded]
        finally:
            await store.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=50_000)
    parser.add_argument("--datasets", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--attempts", type=int, default=5_000)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
