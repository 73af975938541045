"""Scale (issue 17): one big dataset submitted over HTTP to the real server.

For each size (jobs × tasks per job; default 10,000, 100,000 and 1,000,000
× 1, and 200,000 × 3 chained tasks) a fresh ``frazil server`` (SQLite,
``--provider none``, its own process) gets ``POST /actions/submit``, and this
process measures:

* ``materialize_s``: submit → every task exists;
* ``first_queued_s`` / ``queued_10k_s``: submit → the first / 10,000th task
  queued — while materialization goes on; ``first_claimed_s``: submit → a
  pilot's ``POST /task_actions/process`` got a task (then completed it);
* ``idle``: with the whole backlog in place and nothing left to release, the
  server's CPU over ``--idle`` seconds with no client (its own counters) and
  per loop round (rounds from ``/metrics``);
* ``claim``: 16 pilots doing claim → complete over HTTP for ``--seconds``:
  cycles/s and claim+complete cycles per server core-second (server CPU from
  its own counters over the counted window);
* ``rss_mb``: the server's peak RSS during materialization, its RSS when
  materialization ended and at the end.

The counts are read from the SQLite file by this process (read-only, O(1)
queries: ``max(rowid)`` of tasks, the queued counters of the resource
classes). One JSON line; ``claim_cost_growth`` compares the CPU per cycle of
the largest 1-task size with the smallest (issue 17: at most +20 %). Load
averages before and after each run go with the numbers (other work on the
machine moves wall times; CPU per operation much less).

    python -m benchmarks.scale [--sizes 10000x1,100000x1,1000000x1,200000x3] [--runs 3] [--max-runs-large 1]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import statistics
import tempfile
import time
from typing import Any

import psutil
import requests

from benchmarks.claim import PILOT_RESOURCES, RssSampler, closed_loop
from benchmarks.server_process import ServerProcess

LARGE = 500_000
"""Sizes with at least this many tasks run ``--max-runs-large`` times (they take minutes)."""
PILOTS = 16


def config(tasks: int) -> dict[str, Any]:
    return {"version": 3.2, "description": "scale benchmark", "tasks": [
        {"name": f"t{i}", "depends": [f"t{i - 1}"] if i else [],
         "requirements": {"cpu": 1, "memory": 1.0, "disk": 1.0, "time": 1.0},
         "trays": [{"modules": [{"name": "m", "src": "run.py", "args": {"job": "$(job)"}}]}]}
        for i in range(tasks)]}


class Counts:
    """O(1) reads of the server's SQLite file (its own read-only connection)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def tasks(self) -> int:
        return self.conn.execute("SELECT coalesce(max(rowid), 0) FROM tasks").fetchone()[0]

    def queued(self) -> int:
        return self.conn.execute("SELECT coalesce(sum(queued), 0) FROM resource_classes").fetchone()[0]

    def releasable(self) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM tasks INDEXED BY ix_tasks_releasable WHERE status = 'idle' AND deps_pending = 0 "
            "LIMIT 1").fetchone() is not None


def claim_one(server: ServerProcess, token: str) -> bool:
    """One pilot registers, claims a task over HTTP and completes it."""
    headers = {"Authorization": f"Bearer {token}"}
    pilot = requests.post(f"{server.url}/pilots", headers=headers, timeout=60,
                          json={"resources": PILOT_RESOURCES, "site": "bench", "hostname": "first"}).json()["result"]
    reply = requests.post(f"{server.url}/task_actions/process", headers=headers, timeout=60,
                          json={"pilot_id": pilot, "resources": PILOT_RESOURCES, "site": "bench"})
    if reply.status_code != 200:
        return False
    task = reply.json()
    requests.post(f"{server.url}/tasks/{task['task_id']}/task_actions/complete", headers=headers, timeout=60,
                  json={"instance_id": task["instance_id"], "time_used": 1.0}).raise_for_status()
    return True


def loop_rounds(server: ServerProcess, headers: dict[str, str]) -> int:
    text = requests.get(f"{server.url}/metrics", headers=headers, timeout=30).text
    return sum(int(float(m.group(1))) for m in re.finditer(
        r'^frazil_loop_runs_total\{[^}]*result="ok"[^}]*\} (\S+)$', text, re.M))


def cpu_s(process: psutil.Process) -> float:
    t = process.cpu_times()
    return t.user + t.system


def rss_mb(process: psutil.Process) -> float:
    return round(process.memory_info().rss / 2 ** 20, 1)


def one_run(jobs: int, tasks_per_job: int, seconds: float, idle: float, timeout: float) -> dict[str, Any]:
    total = jobs * tasks_per_job
    out: dict[str, Any] = {"jobs": jobs, "tasks_per_job": tasks_per_job, "loadavg_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="frazil-scale-") as tmp:
        server = ServerProcess(f"sqlite:///{tmp}/frazil.db", f"{tmp}/data")
        server.start()
        try:
            proc = psutil.Process(server.pid)
            headers = {"Authorization": f"Bearer {server.token('bench-scale', role='admin', groups='users')}"}
            pilot_token = server.token("bench-pilot", role="system")  # claims for a simulated pilot
            counts = Counts(f"{tmp}/frazil.db")
            with RssSampler(server.pid) as sampler:
                began = time.perf_counter()
                reply = requests.post(f"{server.url}/actions/submit", headers=headers, timeout=120, json={
                    "config": json.dumps(config(tasks_per_job)), "jobs_submitted": jobs, "description": "scale"})
                reply.raise_for_status()
                marks: dict[str, float] = {}
                while "materialize_s" not in marks or "queued_10k_s" not in marks:
                    now = time.perf_counter() - began
                    if now > timeout:
                        out["error"] = f"not done after {timeout:g} s: {marks}"
                        return out
                    queued = counts.queued()
                    if queued > 0:
                        marks.setdefault("first_queued_s", now)
                        if "first_claimed_s" not in marks and claim_one(server, pilot_token):
                            marks["first_claimed_s"] = time.perf_counter() - began
                    if queued + ("first_claimed_s" in marks) >= min(10_000, total):  # + the one claimed
                        marks.setdefault("queued_10k_s", now)
                    if counts.tasks() >= total:
                        marks.setdefault("materialize_s", now)
                        out["rss_mb_at_materialized"] = rss_mb(proc)
                    time.sleep(0.05)
                out.update({k: round(v, 2) for k, v in marks.items()})
                out["rss_mb_peak_materializing"] = round(sampler.peak / 2 ** 20, 1)
            while counts.releasable() and time.perf_counter() - began < timeout:
                time.sleep(0.5)  # the release loop moves the whole backlog to waiting first
            out["released_s"] = round(time.perf_counter() - began, 2)
            time.sleep(3)  # let the loops settle (queue filled, roll-ups done)
            rounds0, cpu0, t0 = loop_rounds(server, headers), cpu_s(proc), time.perf_counter()
            time.sleep(idle)
            rounds, cpu, wall = loop_rounds(server, headers) - rounds0, cpu_s(proc) - cpu0, time.perf_counter() - t0
            out["idle"] = {"seconds": round(wall, 1), "server_cpu_share": round(cpu / wall, 4),
                           "loop_rounds": rounds, "cpu_ms_per_round": round(1000 * cpu / max(rounds, 1), 2)}
            with RssSampler(server.pid) as sampler:
                claim = asyncio.run(closed_loop(server.url, pilot_token, PILOTS,
                                                seconds, server_pid=server.pid))
            ms = claim.get("server_cpu_ms_per_cycle", 0.0)
            claim["cycles_per_server_core_s"] = round(1000 / ms, 1) if ms else None
            out["claim"] = claim
            out["rss_mb_peak_claiming"] = round(sampler.peak / 2 ** 20, 1)
            out["rss_mb_end"] = rss_mb(proc)
        finally:
            server.stop()
    out["loadavg_after"] = os.getloadavg()[0]
    return out


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-size summary: medians of the numbers that matter, plus every run."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"runs": runs}

    def med(get: Any) -> float:
        return round(statistics.median(get(r) for r in ok), 3)
    return {
        "jobs": ok[0]["jobs"], "tasks_per_job": ok[0]["tasks_per_job"], "n_runs": len(ok),
        "materialize_s": med(lambda r: r["materialize_s"]),
        "first_queued_s": med(lambda r: r["first_queued_s"]),
        "first_claimed_s": med(lambda r: r.get("first_claimed_s", float("nan"))),
        "queued_10k_s": med(lambda r: r["queued_10k_s"]),
        "idle_server_cpu_share": med(lambda r: r["idle"]["server_cpu_share"]),
        "idle_cpu_ms_per_round": med(lambda r: r["idle"]["cpu_ms_per_round"]),
        "claim_cycles_per_s": med(lambda r: r["claim"]["cycles_per_s"]),
        "server_cpu_ms_per_cycle": med(lambda r: r["claim"]["server_cpu_ms_per_cycle"]),
        "cycles_per_server_core_s": med(lambda r: r["claim"]["cycles_per_server_core_s"]),
        "rss_mb_peak": max(max(r["rss_mb_peak_materializing"], r["rss_mb_peak_claiming"]) for r in ok),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000x1,100000x1,1000000x1,200000x3",
                        help="comma-separated JOBSxTASKS (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (median reported)")
    parser.add_argument("--max-runs-large", type=int, default=1, help=f"runs of sizes with >= {LARGE:,} tasks")
    parser.add_argument("--seconds", type=float, default=10.0, help="claim loop measuring window")
    parser.add_argument("--idle", type=float, default=20.0, help="idle window with the backlog in place")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"benchmark": "scale", "store": "sqlite", "cpus": os.cpu_count(),
                              "loadavg_before": os.getloadavg()[0], "sizes": []}
    for size in args.sizes.split(","):
        jobs, _, per = size.partition("x")
        n_jobs, n_tasks = int(jobs), int(per or 1)
        runs = args.runs if n_jobs * n_tasks < LARGE else min(args.runs, args.max_runs_large)
        result["sizes"].append(median_of([one_run(n_jobs, n_tasks, args.seconds, args.idle, args.timeout)
                                          for _ in range(runs)]))
    ones = [s for s in result["sizes"] if s.get("tasks_per_job") == 1 and "server_cpu_ms_per_cycle" in s]
    if len(ones) >= 2:
        small, large = min(ones, key=lambda s: s["jobs"]), max(ones, key=lambda s: s["jobs"])
        result["claim_cost_growth"] = {
            "from_jobs": small["jobs"], "to_jobs": large["jobs"],
            "ratio": round(large["server_cpu_ms_per_cycle"] / small["server_cpu_ms_per_cycle"], 3)}
    result["loadavg_after"] = os.getloadavg()[0]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
