"""Cost of one round of the unmatchable check (issue 14 item 3) on a SQLite store:
``--classes`` queued resource classes (a quarter of them asking for an OS nothing
serves), ``--tasks`` queued tasks per class, ``--pilots`` registered pilots.

    python -m benchmarks.matchable [--classes 40] [--tasks 250] [--pilots 1000] [--rounds 20]

Prints one JSON line: the first round (counts the unmatchable classes' tasks)
and later rounds (counts reused), wall and process CPU milliseconds, median
of ``--runs`` runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from typing import Any

from server.provisioning.matchable import MatchableService
from server.store import NewDataset, NewJob, NewPilot, NewTask, open_store


async def one_run(classes: int, tasks: int, pilots: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{folder}/frazil.db")
        try:
            ds = await store.create_dataset(NewDataset(description="bench", jobs_submitted=classes * tasks,
                                                       tasks_per_job=1, group="users", username="bench"))
            jobs = []
            for c in range(classes):
                req = {"memory": 0.5 + c % 4, "site": f"s{c % 10}", "os": [f"SL_{c}_x86_64"] if c % 4 == 0 else []}
                for t in range(tasks):
                    jobs.append(NewJob(len(jobs), [NewTask(name="t", task_index=0, requirements=req,
                                                           status="queued")]))
            await store.create_jobs(ds.dataset_id, jobs)
            for p in range(pilots):
                await store.register_pilot(NewPilot(resources={"cpu": 8, "memory": 64, "disk": 100, "time": 24},
                                                    os=["RHEL_9_x86_64", "container"], site=f"s{p % 10}"))
            service = MatchableService(store, [])
            timings = []
            for _ in range(rounds + 1):
                wall, cpu = time.perf_counter(), time.process_time()
                await service.step()
                timings.append(((time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3))
            assert len(service.snapshot.entries) == (classes + 3) // 4
            later = timings[1:]
            return {"store_classes": len(await store.queued_classes()),"first_wall_ms": timings[0][0], "first_cpu_ms": timings[0][1],
                    "round_wall_ms": statistics.median(t[0] for t in later),
                    "round_cpu_ms": statistics.median(t[1] for t in later)}
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=250)
    parser.add_argument("--pilots", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [asyncio.run(one_run(args.classes, args.tasks, args.pilots, args.rounds)) for _ in range(args.runs)]
    result = {key: round(statistics.median(float(r[key]) for r in runs), 2) for key in runs[0]}
    print(json.dumps({"benchmark": "matchable", "classes": args.classes, "queued_tasks": args.classes * args.tasks,
                      "pilots": args.pilots, "runs": args.runs, "load_average": round(os.getloadavg()[0], 2),
                      **result}))


if __name__ == "__main__":
    main()
