"""Monitor CPU share (DESIGN.md §5: ≤ 1% of a core with 16 running tasks).

16 tasks, each one module running ``sleep``, run concurrently through
``run_task`` with ONE shared :class:`Monitor` at its production interval
(1 Hz), as a pilot runs them. Reported:

* ``monitor_cpu_share``: CPU seconds spent inside the monitor's sampling
  (``thread_time`` around each tick) / wall seconds — the number the target
  is about;
* ``process_cpu_share``: the whole runner process (event loop, pipes, log
  files, monitor) / wall seconds — an upper bound;
* ``host_processes``: how many processes the /proc scan sees here;
* ``runner_noop_task_ms``: the runner's own cost per task (work dir, logs,
  spawning ``/bin/true``, monitoring, classification), tasks run one after
  another — the runner's share of the pilot's ≤ 20 ms per-task target.

    python -m benchmarks.pilot_monitor [--tasks 16] [--seconds 20] [--interval 1.0]

prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from common.plan.records import ModulePlan, TaskPlan, TrayPlan
from common.resources import Resources
from pilot.runner import Monitor, run_task

TARGET = 0.01


def _plan(index: int, seconds: float | None) -> TaskPlan:
    argv = ["/bin/true"] if seconds is None else ["/bin/sleep", f"{seconds}"]
    module = ModulePlan(name="sleep", index=0, path="m", argv=argv)
    tray = TrayPlan(name="t", index=0, iteration=0, path="t", modules=[module])
    return TaskPlan(dataset_id="bench", dataset=1, job=index, jobs_submitted=1,
                    task_name="sleep", task_index=0, task_id=f"t{index}", requirements={},
                    trays=[tray])


async def measure(tasks: int, seconds: float, interval: float) -> dict[str, object]:
    monitor = Monitor(interval=interval)
    limits = Resources(memory=1, disk=1, time=1)
    with tempfile.TemporaryDirectory(prefix="frazil-bench-") as base:
        cpu_start, wall_start = time.process_time(), time.monotonic()
        results = await asyncio.gather(*(
            run_task(_plan(i, seconds), workdir_base=Path(base), limits=limits, monitor=monitor)
            for i in range(tasks)))
        wall = time.monotonic() - wall_start
        process_cpu = time.process_time() - cpu_start
        monitor_cpu = monitor.cpu_used
        noop_ms = await _noop_overhead(Path(base), monitor)
    statuses = sorted({r.status for r in results})
    return {
        "benchmark": "pilot_monitor",
        "tasks": tasks,
        "interval_s": interval,
        "wall_s": round(wall, 2),
        "monitor_cpu_s": round(monitor_cpu, 4),
        "monitor_cpu_share": round(monitor_cpu / wall, 5),
        "process_cpu_share": round(process_cpu / wall, 5),
        "target_share": TARGET,
        "meets_target": monitor_cpu / wall <= TARGET,
        "runner_noop_task_ms": round(noop_ms, 2),
        "host_processes": sum(1 for name in os.listdir("/proc") if name.isdigit()),
        "statuses": statuses,
    }


async def _noop_overhead(base: Path, monitor: Monitor, count: int = 200) -> float:
    """Milliseconds per no-op task run through ``run_task``, one after another."""
    await run_task(_plan(-1, None), workdir_base=base, monitor=monitor)  # warm up
    started = time.perf_counter()
    for index in range(count):
        result = await run_task(_plan(index, None), workdir_base=base, monitor=monitor)
        if result.status != "complete":
            raise RuntimeError(f"no-op task ended {result.status}: {result.reason}")
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.tasks, args.seconds, args.interval))))


if __name__ == "__main__":
    main()
