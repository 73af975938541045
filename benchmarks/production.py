"""Production tools at scale (issue 16 items 1, 4, 5), in-process on SQLite.

Builds one dataset of ``--tasks`` one-task jobs (queued), runs ``--runs-done``
claim+complete cycles and as many claim+fail cycles (half of them kind
"memory" on host bad1) through the store, then times, median of 3 each:

* ``forecast``: GET /datasets/{id}/forecast's service (counts by name and
  status, the newest 1,000 complete attempts, the completions of 6 h);
* ``rightsizing``: the dataset page's requested-vs-used table;
* ``dry_run_status``: retry by filter, dry run of ``status=failed,kind=memory``
  (the failed tasks by index, joined to their last attempts);
* ``dry_run_attempt_only``: dry run of ``kind=memory`` alone (walks every task);
* ``reset_failed_memory``: the real reset of those matches (once, not a median);
* ``accounting_day``: GET /accounting?by=site over the day.

Each reports wall ms and the process's CPU ms (all threads). Prints one JSON line.

    python -m benchmarks.production [--tasks 1000000] [--runs-done 2000]
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
from server.auth import Identity
from server.scheduling import accounting, forecast, rightsizing, task_filter
from server.store import AttemptResult, ClaimRequest, FailureClass, NewDataset, NewJob, NewTask, Store, open_store

BATCH = 10_000


async def build(store: Store, tasks: int, runs: int) -> str:
    ds = await store.create_dataset(NewDataset(description="production bench", jobs_submitted=tasks,
                                               tasks_per_job=1, group="users", username="bench"))
    for start in range(0, tasks, BATCH):
        jobs = [NewJob(job_index=i, tasks=[NewTask(name="gen", task_index=0, status="queued",
                                                   requirements={"cpu": 1, "memory": 4.0})])
                for i in range(start, min(tasks, start + BATCH))]
        await store.create_jobs(ds.dataset_id, jobs)
    free = Resources(cpu=8, gpu=0, memory=32, disk=100, time=10)
    for n in range(2 * runs):
        got = await store.claim(ClaimRequest("bench-pilot", free, site="SiteA" if n % 2 else "SiteB", host="h"))
        assert got is not None
        if n % 2 == 0:
            await store.complete(got.task.task_id, got.instance_id, AttemptResult(
                time_used=3600, site="SiteB", host="n1", resources={"memory": 1.3, "time": 1.0}))
        else:
            kind = "memory" if n % 4 == 1 else "transfer"
            await store.fail(got.task.task_id, got.instance_id, AttemptResult(
                time_used=1800, site="SiteA", host="bad1" if kind == "memory" else "n2", kind=kind,
                failure_class=FailureClass.PHYSICS))
    return ds.dataset_id


async def timed(call: Callable[[], Awaitable[Any]], repeat: int = 3) -> dict[str, Any]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = await call()
        walls.append((time.perf_counter() - wall0) * 1000)
        cpus.append((time.process_time() - cpu0) * 1000)
    return {"wall_ms": round(statistics.median(walls), 1), "cpu_ms": round(statistics.median(cpus), 1),
            "result": result}


async def run(tasks: int, runs: int) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="frazil-production-bench-")
    store = await open_store(f"sqlite:///{os.path.join(folder, 'bench.db')}")
    try:
        t0 = time.perf_counter()
        dataset_id = await build(store, tasks, runs)
        build_s = time.perf_counter() - t0
        admin = Identity(username="root", role="admin", groups=frozenset())
        window = accounting.Window.parse(None, None, default_days=1)
        memory = task_filter.BulkFilter.parse({"status": "failed", "kind": "memory"})
        kind_only = task_filter.BulkFilter.parse({"kind": "memory"})
        out: dict[str, Any] = {"tasks": tasks, "complete": runs, "failed": runs, "build_s": round(build_s, 1),
                               "load_avg": os.getloadavg()}
        f = await timed(lambda: forecast.forecast(store, dataset_id))
        out["forecast"] = {**f, "result": {k: f["result"].to_json()[k] for k in ("tasks_left", "cpu_hours_left")}}
        r = await timed(lambda: rightsizing.rightsizing(store, dataset_id))
        out["rightsizing"] = {**r, "result": len(r["result"])}
        for name, flt in (("dry_run_status", memory), ("dry_run_attempt_only", kind_only)):
            d = await timed(lambda flt=flt: task_filter.bulk_action(store, dataset_id, "reset", flt, dry_run=True))
            out[name] = {**d, "result": d["result"].count}
        reset = await timed(lambda: task_filter.bulk_action(store, dataset_id, "reset", memory, dry_run=False), 1)
        out["reset_failed_memory"] = {**reset, "result": reset["result"].count}
        a = await timed(lambda: accounting.usage(store, "site", window, admin))
        out["accounting_day"] = {**a, "result": len(a["result"])}
        return out
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs-done", type=int, default=2000, help="complete attempts (and as many failed)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.tasks, args.runs_done))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
