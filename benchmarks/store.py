"""Store benchmark (DESIGN.md §5): the claim hot path in-process.

For each queue size (default 1,000,000 then 10,000 queued tasks, in four
datasets of priorities 0.3..0.9, about 10% needing a GPU, memory/disk/time/os
mixed, task priorities from IceProd's formula — or uniformly random with
``--random-priorities``, the worst case for page locality) it measures:

* bulk creation rate (tasks/s) while building the queue (jobs of 2 tasks, the
  second depending on the first, created queued in batches of 10,000 tasks,
  two datasets at a time; building the job objects is the caller's work and
  is not timed);
* claim+complete cycles/s and p50/p99 claim latency with 1, 8 and 64
  concurrent claimers; each claim carries every resource filter (cpu, gpu,
  memory, disk, time, os, site), each complete is fenced by the instance_id,
  and the attempt record is written; one claimer in eight is a GPU pilot;
  the queue is topped up between levels (untimed) so it stays near its size;
* roll-up time: 1,000 touched jobs, and one dataset of N/8 jobs.

``cpu_us_per_cycle`` is the CPU time of the whole process (all threads) per
cycle: unlike the rates it does not depend on what else the machine runs.

The p99 claim target (≤ 5 ms) is meaningful for 1 and 8 claimers: with 64
claimers in a closed loop the mean latency is at least 64 / throughput
(Little's law), so that level shows throughput, not latency.

    python -m benchmarks.store [--backend sqlite|mongo-wire] [--tasks N] [--small N] [--runs R] [--not-durable]

The store is opened durable (SQLite ``synchronous=FULL``, the server's
default); ``--not-durable`` measures the opt-out (``synchronous=NORMAL``).

``mongo-wire`` runs against an nx-27017 server started here: a MongoDB wire
protocol server, NOT a real MongoDB; its numbers say nothing about MongoDB.
Prints one JSON line (medians over the runs).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from common.resources import Resources
from server.store import (
    AttemptResult, ClaimRequest, NewDataset, NewJob, NewTask, Store, open_store,
)

DATASETS = 4
BATCH_TASKS = 10_000
CHUNK_TASKS = 100_000
STREAMS = 2
LEVELS = (1, 8, 64)
OS_LIST = ["el8", "el9"]


def requirements(rng: random.Random) -> dict[str, Any]:
    req: dict[str, Any] = {"memory": rng.choice([0.5, 1, 1.5, 2, 3, 4]), "time": rng.choice([1, 2, 4, 8])}
    if rng.random() < 0.1:
        req["gpu"] = 1
    if rng.random() < 0.2:
        req["disk"] = rng.choice([2, 5, 8])
    if rng.random() < 0.3:
        req["os"] = [rng.choice(OS_LIST)]
    return req


def task_priority(dataset_priority: float, job_index: int, jobs: int, task_index: int) -> float:
    """IceProd's task priority (reference §6.3) without its first-100-jobs
    boost: later tasks of a job and earlier jobs of a dataset come first."""
    p = dataset_priority + (task_index / 2) / 5 - (job_index / max(jobs, 1)) / 5
    return min(1.0, max(0.0, p))


def make_jobs(first: int, n_jobs: int, rng: random.Random, dataset_priority: float | None = None,
              jobs_total: int = 1) -> list[NewJob]:
    """Jobs of a queued gen -> sim pair; ``dataset_priority`` None: random priorities
    (the worst case for locality: every claim lands on a random page)."""
    jobs = []
    for j in range(first, first + n_jobs):
        prio = [rng.random(), rng.random()] if dataset_priority is None else [
            task_priority(dataset_priority, j, jobs_total, i) for i in range(2)]
        a = NewTask("gen", 0, requirements(rng), status="queued", priority=prio[0])
        b = NewTask("sim", 1, requirements(rng), depends=[a.task_id], status="queued", priority=prio[1])
        jobs.append(NewJob(j, [a, b]))
    return jobs


class Queue:
    """The datasets of one benchmark run and where their next job goes."""

    def __init__(self, store: Store, rng: random.Random, random_priorities: bool = False) -> None:
        self.store, self.rng, self.random_priorities = store, rng, random_priorities
        self.datasets: list[str] = []
        self.priority: dict[str, float] = {}
        self.jobs_total = 1
        self.next_index: dict[str, int] = {}
        self.job_ids: list[str] = []

    async def setup(self, total_jobs: int) -> None:
        self.jobs_total = max(1, total_jobs // DATASETS)
        for n in range(DATASETS):
            priority = 0.3 + 0.2 * n
            ds = await self.store.create_dataset(NewDataset("benchmark", total_jobs, 2, "simprod", "bench",
                                                            priority=priority))
            self.datasets.append(ds.dataset_id)
            self.priority[ds.dataset_id] = priority
            self.next_index[ds.dataset_id] = 0

    async def add(self, n_tasks: int) -> float:
        """Create ``n_tasks`` queued tasks; returns the seconds the store took.

        The job objects of up to CHUNK_TASKS tasks are built first (untimed:
        that is the caller's work), then created in batches of BATCH_TASKS,
        two datasets at a time as two materializers would (one batch is
        prepared while the other is written)."""
        timed = 0.0
        left = n_tasks // 2
        turn = 0
        while left > 0:
            chunk: list[tuple[str, list[NewJob]]] = []
            while left > 0 and len(chunk) * BATCH_TASKS < CHUNK_TASKS:
                ds = self.datasets[turn % len(self.datasets)]
                turn += 1
                n = min(left, BATCH_TASKS // 2)
                chunk.append((ds, make_jobs(self.next_index[ds], n, self.rng,
                                            None if self.random_priorities else self.priority[ds],
                                            self.jobs_total)))
                self.next_index[ds] += n
                left -= n
            for _, jobs in chunk:
                if len(self.job_ids) < 1000:
                    self.job_ids.extend(j.job_id for j in jobs[:1000 - len(self.job_ids)])
            start = time.perf_counter()
            for i in range(0, len(chunk), STREAMS):
                await asyncio.gather(*(self.store.create_jobs(ds, jobs) for ds, jobs in chunk[i:i + STREAMS]))
            timed += time.perf_counter() - start
        return timed


def pilot(n: int) -> ClaimRequest:
    gpu = 1 if n % 8 == 0 else 0
    return ClaimRequest(f"bench-pilot-{n}", Resources(cpu=4, gpu=gpu, memory=8, disk=20, time=12),
                        os=["el9"], site="WIPAC", lease_seconds=3600, host=f"node{n}")


async def claim_level(store: Store, concurrency: int, cycles: int) -> dict[str, float]:
    latencies: list[float] = []
    per_worker = max(1, cycles // concurrency)

    async def worker(n: int) -> None:
        req = pilot(n)
        for _ in range(per_worker):
            t0 = time.perf_counter()
            got = await store.claim(req)
            latencies.append(time.perf_counter() - t0)
            if got is None:
                raise RuntimeError("the queue ran dry: raise --tasks or lower --cycles")
            out = await store.complete(got.task.task_id, got.instance_id, AttemptResult(time_used=60.0))
            if not out.applied:
                raise RuntimeError(f"complete not applied: {out}")

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    latencies.sort()
    return {"cycles_per_s": round(len(latencies) / elapsed, 1),
            "cpu_us_per_cycle": round(1e6 * cpu / len(latencies), 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 3),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 3),
            "cycles": len(latencies)}


async def one_size(url: str, n_tasks: int, cycles: int, seed: int, random_priorities: bool,
                   durable: bool = True) -> dict[str, Any]:
    store = await open_store(url, durable=durable)
    try:
        queue = Queue(store, random.Random(seed), random_priorities)
        await queue.setup(n_tasks)
        build_s = await queue.add(n_tasks)
        result: dict[str, Any] = {"queued": n_tasks, "bulk_create_tasks_per_s": round(n_tasks / build_s),
                                  "build_s": round(build_s, 2)}
        per_level = min(cycles, n_tasks // 5)
        for level in LEVELS:
            result[f"claim_c{level}"] = await claim_level(store, level, per_level)
            await queue.add(per_level)  # top up (untimed) so the queue stays near its size
        t0 = time.perf_counter()
        await store.rollup_jobs(queue.job_ids)
        result["rollup_1000_jobs_ms"] = round(1000 * (time.perf_counter() - t0), 2)
        t0 = time.perf_counter()
        await store.rollup_dataset(queue.datasets[0])
        result["rollup_dataset_ms"] = round(1000 * (time.perf_counter() - t0), 2)
        result["rollup_dataset_jobs"] = queue.next_index[queue.datasets[0]]
        return result
    finally:
        await store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NxServer:
    """An nx-27017 wire server in a temporary folder (benchmark only)."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.port = _free_port()
        exe = pathlib.Path(sys.executable).parent / "nx-27017"
        self.proc = subprocess.Popen(
            [str(exe), "--host", "127.0.0.1", "-p", str(self.port), "--data-dir", str(folder / "data"),
             "--log-file", str(folder / "nx.log"), "--pid-file", str(folder / "nx.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nx-27017 did not start") from None
                time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-metric median over runs (nested dicts merged the same way)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs])
        elif isinstance(value, (int, float)):
            out[key] = statistics.median(r[key] for r in runs)
        else:
            out[key] = value
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [args.tasks, args.small]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="frazil-bench-") as tmp:
        folder = pathlib.Path(tmp)
        nx = NxServer(folder) if args.backend == "mongo-wire" else None
        try:
            for size in sizes:
                runs = []
                for run in range(args.runs):
                    name = f"bench_{size}_{run}"
                    url = nx.url(name) if nx else f"sqlite:///{folder}/{name}.db"
                    runs.append(await one_size(url, size, args.cycles, run, args.random_priorities,
                                               not args.not_durable))
                    if not nx:
                        for suffix in ("", "-wal", "-shm"):
                            pathlib.Path(f"{folder}/{name}.db{suffix}").unlink(missing_ok=True)
                results[str(size)] = median_of(runs)
        finally:
            if nx:
                nx.stop()
    big, small = results[str(args.tasks)], results[str(args.small)]
    growth = {f"c{level}_cycles_small_over_big": round(small[f"claim_c{level}"]["cycles_per_s"]
                                                       / big[f"claim_c{level}"]["cycles_per_s"], 3)
              for level in LEVELS}
    return {
        "benchmark": "store", "durable_commits": not args.not_durable,
        "backend": "nx-27017 (MongoDB wire protocol server, not a real MongoDB)" if args.backend == "mongo-wire"
        else "sqlite",
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "priorities": "random" if args.random_priorities else "iceprod-formula",
        "runs": args.runs, "statistic": "median",
        "sizes": results, "cost_growth": growth,
        "targets": {"claim_complete_per_s": 5000, "p99_claim_ms": 5, "bulk_create_tasks_per_s": 100_000,
                    "small_vs_big_within": 0.2},
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "mongo-wire"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=1_000_000, help="queued tasks of the big run")
    parser.add_argument("--small", type=int, default=10_000, help="queued tasks of the small run")
    parser.add_argument("--cycles", type=int, default=10_000, help="claim+complete cycles per level")
    parser.add_argument("--runs", type=int, default=1, help="repeat and report medians")
    parser.add_argument("--random-priorities", action="store_true",
                        help="uniformly random task priorities instead of IceProd's formula (worst-case locality)")
    parser.add_argument("--not-durable", action="store_true",
                        help="durable_commits off: SQLite synchronous=NORMAL (the speed the default gives up)")
    args = parser.parse_args(argv)
    if args.tasks < 100 or args.small < 100:
        parser.error("--tasks and --small must be at least 100")
    return args


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse()))))
