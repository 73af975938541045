"""Do hostile configs stall the server? (issue 11 item 3)

The real ``frazil server`` as a subprocess on SQLite. A pilot claims (an
empty queue: answered 404 at once) and a monitor polls ``/healthz``, one
request every 20 ms each, (a) alone, then (b) while ``--submitters`` clients
post the worst configs we can write (benchmarks/worst_configs.py) to
``/actions/submit`` as fast as they are answered (one job each: what is
measured is the submit check, not materializing what passes it). Prints one JSON line:
p50/p99/max latency of healthz and claims in both phases, the submits made
and their statuses, and the CPU seconds the server process and its config
workers used per submit (from their own counters).

    python -m benchmarks.config_stall [--seconds 30] [--submitters 4] [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from typing import Any

import aiohttp
import psutil

from benchmarks.server_process import ServerProcess
from benchmarks.worst_configs import WORST

PILOT_RESOURCES = {"cpu": 1, "gpu": 0, "memory": 4.0, "disk": 10.0, "time": 12.0}


def quantiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(1000 * statistics.median(ordered), 2),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "max_ms": round(1000 * ordered[-1], 2)}


def cpu_seconds(pid: int) -> dict[str, float]:
    """The server's own CPU and its children's (the config workers), alive ones included."""
    proc = psutil.Process(pid)
    own = proc.cpu_times()
    children = 0.0
    for child in proc.children(recursive=True):
        try:
            times = child.cpu_times()
            children += times.user + times.system
        except psutil.Error:
            pass
    return {"server": own.user + own.system, "workers": children + own.children_user + own.children_system}


async def probe(session: aiohttp.ClientSession, url: str, pilot: dict[str, str], pilot_id: str,
                stop: asyncio.Event, healthz: list[float], claims: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        async with session.get(f"{url}/healthz") as reply:
            await reply.read()
        healthz.append(time.perf_counter() - start)
        start = time.perf_counter()
        async with session.post(f"{url}/task_actions/process", headers=pilot,
                                json={"pilot_id": pilot_id, "resources": PILOT_RESOURCES}) as reply:
            await reply.read()
        claims.append(time.perf_counter() - start)
        await asyncio.sleep(0.02)


async def attack(session: aiohttp.ClientSession, url: str, user: dict[str, str], stop: asyncio.Event,
                 statuses: Counter, index: int) -> None:
    configs = [json.dumps(make()) for make in WORST.values()]
    n = index
    while not stop.is_set():
        async with session.post(f"{url}/actions/submit", headers=user,
                                json={"config": configs[n % len(configs)], "jobs_submitted": 1}) as reply:
            statuses[reply.status] += 1
            await reply.read()
        n += 1


async def phase(server: ServerProcess, tokens: dict[str, str], pilot_id: str, seconds: float,
                submitters: int) -> dict[str, Any]:
    healthz: list[float] = []
    claims: list[float] = []
    statuses: Counter = Counter()
    stop = asyncio.Event()
    before, started = cpu_seconds(server.pid), time.monotonic()
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks = [asyncio.create_task(probe(session, server.url, {"Authorization": f"Bearer {tokens['pilot']}"},
                                           pilot_id, stop, healthz, claims))]
        tasks += [asyncio.create_task(attack(session, server.url, {"Authorization": f"Bearer {tokens['user']}"},
                                             stop, statuses, i)) for i in range(submitters)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
    after, wall = cpu_seconds(server.pid), time.monotonic() - started
    submits = sum(statuses.values())
    result: dict[str, Any] = {"wall_s": round(wall, 2), "healthz": quantiles(healthz), "claim": quantiles(claims),
                              "submits": submits, "submit_statuses": dict(statuses),
                              "server_cpu_s": round(after["server"] - before["server"], 2),
                              "worker_cpu_s": round(after["workers"] - before["workers"], 2)}
    if submits:
        result["worker_cpu_s_per_submit"] = round((after["workers"] - before["workers"]) / submits, 3)
        result["server_cpu_s_per_submit"] = round((after["server"] - before["server"]) / submits, 3)
    return result


async def run_once(seconds: float, submitters: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(f"sqlite:///{tmp}/frazil.db", os.path.join(tmp, "data"),
                               env={"FRAZIL_LOG_LEVEL": "warning", "FRAZIL_CLAIM_RATE_PER_PILOT": "100000"})
        server.start()
        try:
            tokens = {"user": server.token("mallory"), "pilot": server.token("pilot-1", role="system")}
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{server.url}/pilots", json={"resources": PILOT_RESOURCES},
                                        headers={"Authorization": f"Bearer {tokens['pilot']}"}) as reply:
                    pilot_id = (await reply.json())["result"]
            quiet = await phase(server, tokens, pilot_id, seconds / 3, 0)
            loaded = await phase(server, tokens, pilot_id, seconds, submitters)
            return {"quiet": quiet, "under_worst_configs": loaded}
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the attack phase")
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the p99s reported are their medians")
    args = parser.parse_args()
    runs = [asyncio.run(run_once(args.seconds, args.submitters)) for _ in range(args.repeat)]
    load = os.getloadavg()
    summary = {
        "benchmark": "config_stall", "seconds": args.seconds, "submitters": args.submitters, "runs": runs,
        "median_p99_ms": {
            f"{phase}.{what}": statistics.median(r[phase][what].get("p99_ms", 0.0) for r in runs)
            for phase in ("quiet", "under_worst_configs") for what in ("healthz", "claim")},
        "loadavg": [round(x, 2) for x in load], "cpus": os.cpu_count()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
