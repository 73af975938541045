"""Claim over HTTP (DESIGN.md §5): the real ``frazil server`` as a subprocess on
127.0.0.1 with SQLite and N queued tasks, simulated pilots as aiohttp clients
in another process.

(a) closed loop: 64 pilots doing claim → complete as fast as they can: cycles/s,
    and the server's CPU time per cycle (``a_server_cpu_ms_per_cycle``, median
    of the runs; user + system time from the server process's own counters over
    the counted window, which a busy machine moves far less than wall rates);
(b) open loop: 1,000 registered pilots heartbeating every 60 s, offering
    300 claims/s in total (Poisson arrivals): p50/p99 claim latency;
(c) the server's peak RSS during (a) and (b);
(d) the same closed-loop client against a trivial aiohttp handler in its own
    process: the ceiling of this client and machine, (a)/(d), and that
    handler's CPU time per request (``d_trivial_cpu_ms_per_request``);
plus, when the server has ``/actions/submit``: a 100,000-job × 3-task dataset
from submit to all tasks materialized.

    python -m benchmarks.claim [--tasks N] [--quick] [--repeat 3] [--open-seconds 0] [--submit-jobs 0]

The server runs with its defaults (``durable_commits``: an fsync of the WAL per
group commit); ``FRAZIL_DURABLE_COMMITS=false`` in the environment measures
the opt-out (SQLite ``synchronous=NORMAL``).
                               [--store-dir DIR]

prints one JSON line. The server runs as a :class:`benchmarks.server_process.ServerProcess`.
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
import threading
import time
from typing import Any

import aiohttp

from benchmarks.server_process import REPO, ServerProcess, free_port

PILOT_RESOURCES = {"cpu": 1, "gpu": 0, "memory": 4.0, "disk": 10.0, "time": 12.0}
TASK_CONFIG: dict[str, Any] = {
    "version": 3.2,
    "description": "claim benchmark: one no-op task per job",
    "tasks": [{"name": "noop", "requirements": {"cpu": 1, "memory": 1.0, "disk": 1.0, "time": 1.0},
               "trays": [{"modules": [{"name": "noop", "src": "noop.py", "args": {"job": "$(job)"}}]}]}],
}


# ---------------------------------------------------------------- store fill


async def fill_store(db_url: str, tasks: int, *, batch: int = 50_000) -> dict[str, Any]:
    """One processing dataset of ``tasks`` one-task jobs, all queued, written
    straight into the store (the server is not running yet)."""
    from server.store import NewDataset, NewJob, NewTask, open_store

    started = time.perf_counter()
    store = await open_store(db_url)
    try:
        ds = await store.create_dataset(NewDataset(description="claim benchmark", jobs_submitted=tasks,
                                                   tasks_per_job=1, group="users", username="bench"))
        version = await store.add_config_version(ds.dataset_id, TASK_CONFIG, "bench")
        requirements = TASK_CONFIG["tasks"][0]["requirements"]
        for start in range(0, tasks, batch):
            jobs = [NewJob(job_index=i, tasks=[NewTask(name="noop", task_index=0, requirements=dict(requirements),
                                                       priority=0.5)])
                    for i in range(start, min(tasks, start + batch))]
            await store.create_jobs(ds.dataset_id, jobs, version)
        while await store.release_dependencies(limit=100_000):
            pass
        queued = 0
        while True:
            moved = await store.queue_tasks(100_000)
            queued += len(moved)
            if len(moved) < 100_000:
                break
    finally:
        await store.close()
    return {"dataset_id": ds.dataset_id, "queued": queued, "fill_s": round(time.perf_counter() - started, 1)}


# ---------------------------------------------------------------- clients (run in their own process)


async def _register(session: aiohttp.ClientSession, url: str, n: int) -> list[str]:
    async def one(i: int) -> str:
        async with session.post(f"{url}/pilots", json={"resources": PILOT_RESOURCES, "site": "bench",
                                                       "hostname": f"pilot{i}"}) as r:
            r.raise_for_status()
            return (await r.json())["result"]
    ids: list[str] = []
    for start in range(0, n, 100):
        ids.extend(await asyncio.gather(*(one(i) for i in range(start, min(n, start + 100)))))
    return ids


async def _claim(session: aiohttp.ClientSession, url: str, pilot_id: str) -> dict[str, Any] | None:
    body = {"pilot_id": pilot_id, "resources": PILOT_RESOURCES, "site": "bench"}
    async with session.post(f"{url}/task_actions/process", json=body) as r:
        if r.status == 404:
            await r.read()
            return None
        r.raise_for_status()
        return await r.json()


async def _complete(session: aiohttp.ClientSession, url: str, task: dict[str, Any]) -> None:
    async with session.post(f"{url}/tasks/{task['task_id']}/task_actions/complete",
                            json={"instance_id": task["instance_id"], "time_used": 1.0}) as r:
        await r.read()
        r.raise_for_status()


def _session(token: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                 connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60))


def _cpu_seconds(process: Any) -> float:
    """User + system CPU time the process has used so far (its own counters)."""
    times = process.cpu_times()
    return times.user + times.system


async def closed_loop(url: str, token: str, pilots: int, seconds: float, warmup: float = 2.0,
                      register: bool = True, server_pid: int | None = None) -> dict[str, Any]:
    """Every pilot: claim → complete → claim ... ; cycles counted after warm-up.
    ``register=False`` for the trivial server, which has no /pilots. With
    ``server_pid``, the server's CPU time over exactly the counted window is
    read from its own counters (other work on the machine moves wall rates,
    hardly CPU time)."""
    import psutil

    server = psutil.Process(server_pid) if server_pid else None
    async with _session(token) as session:
        ids = await _register(session, url, pilots) if register else [f"p{i}" for i in range(pilots)]
        base = url
        counted = [0]
        empty = [0]
        measuring = [False]
        stop = [False]

        async def pilot(pilot_id: str) -> None:
            while not stop[0]:
                task = await _claim(session, base, pilot_id)
                if task is None:
                    empty[0] += 1
                    await asyncio.sleep(0.05)
                    continue
                await _complete(session, base, task)
                if measuring[0]:
                    counted[0] += 1

        runners = [asyncio.create_task(pilot(p)) for p in ids]
        await asyncio.sleep(warmup)
        measuring[0] = True
        began = time.perf_counter()
        cpu_began = _cpu_seconds(server) if server else 0.0
        await asyncio.sleep(seconds)
        measuring[0] = False
        cpu = _cpu_seconds(server) - cpu_began if server else 0.0
        elapsed = time.perf_counter() - began
        stop[0] = True
        await asyncio.gather(*runners)
    result: dict[str, Any] = {"cycles_per_s": round(counted[0] / elapsed, 1), "cycles": counted[0],
                              "empty_claims": empty[0]}
    if server:
        # cycles in flight at both ends of the window roughly cancel out
        result["server_cpu_ms_per_cycle"] = round(1000 * cpu / max(counted[0], 1), 3)
        result["server_cpu_share"] = round(cpu / elapsed, 2)
    return result


async def open_loop(url: str, token: str, pilots: int, rate: float, seconds: float,
                    heartbeat_s: float = 60.0) -> dict[str, Any]:
    """Poisson claim arrivals at ``rate``/s spread over ``pilots`` registered
    pilots that each heartbeat every ``heartbeat_s`` (phases spread evenly)."""
    async with _session(token) as session:
        ids = await _register(session, url, pilots)
        latencies: list[float] = []
        errors = [0]
        held: dict[str, list[str]] = {p: [] for p in ids}
        inflight: set[asyncio.Task[None]] = set()
        end = time.perf_counter() + seconds

        async def heartbeats(pilot_id: str, phase: float) -> None:
            await asyncio.sleep(phase)
            while time.perf_counter() < end:
                async with session.patch(f"{url}/pilots/{pilot_id}",
                                         json={"free": PILOT_RESOURCES, "tasks": held[pilot_id][-100:]}) as r:
                    await r.read()
                await asyncio.sleep(heartbeat_s)

        async def arrival(pilot_id: str) -> None:
            began = time.perf_counter()
            try:
                task = await _claim(session, url, pilot_id)
            except aiohttp.ClientError:
                errors[0] += 1
                return
            latencies.append(time.perf_counter() - began)
            if task is not None:
                held[pilot_id].append(task["task_id"])
                await _complete(session, url, task)
                held[pilot_id].remove(task["task_id"])

        beats = [asyncio.create_task(heartbeats(p, i * heartbeat_s / pilots)) for i, p in enumerate(ids)]
        rng = random.Random(1)
        next_at = time.perf_counter()
        while next_at < end:
            next_at += rng.expovariate(rate)
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            job = asyncio.create_task(arrival(rng.choice(ids)))
            inflight.add(job)
            job.add_done_callback(inflight.discard)
        await asyncio.gather(*inflight)
        for beat in beats:
            beat.cancel()
        await asyncio.gather(*beats, return_exceptions=True)
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else -1.0
    return {"claims": len(latencies), "offered_per_s": rate, "achieved_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0), "errors": errors[0]}


def run_trivial_server(port: int) -> None:
    """The ceiling: the same routes answered by a handler that does nothing."""
    from aiohttp import web

    async def claim(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"task_id": "t", "instance_id": "i"})

    async def complete(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "complete"})

    app = web.Application()
    app.router.add_post("/task_actions/process", claim)
    app.router.add_post("/tasks/{task_id}/task_actions/complete", complete)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def client_process(mode: str, **kwargs: Any) -> dict[str, Any]:
    """Run a client mode in a separate Python process; its JSON result."""
    args = [sys.executable, "-m", "benchmarks.claim", "--client", mode, "--client-args", json.dumps(kwargs)]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise RuntimeError(f"client {mode} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- orchestration


class RssSampler:
    """Peak resident memory of a process, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except Exception:  # the process ended: keep the last peak
                return
            self._stop.wait(self.every)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def time_submit(server: ServerProcess, jobs: int, timeout: float = 300.0) -> dict[str, Any]:
    """POST /actions/submit of a jobs × 3-task dataset; seconds until every task exists."""
    import requests

    config = {"version": 3.2, "tasks": [
        {"name": f"t{i}", "depends": [f"t{i - 1}"] if i else [],
         "requirements": {"cpu": 1, "memory": 1.0},
         "trays": [{"modules": [{"name": "m", "src": "run.py", "args": {"job": "$(job)"}}]}]} for i in range(3)]}
    headers = {"Authorization": f"Bearer {server.token('bench-submit', role='admin', groups='users')}"}
    began = time.perf_counter()
    reply = requests.post(f"{server.url}/actions/submit", headers=headers, timeout=120,
                          json={"config": json.dumps(config), "jobs_submitted": jobs, "description": "submit bench"})
    if reply.status_code == 404:
        return {"submit": "no /actions/submit route on this server"}
    reply.raise_for_status()
    message_id = reply.json()["result"]
    dataset_id = None
    while time.perf_counter() - began < timeout:
        status = requests.get(f"{server.url}/actions/submit/{message_id}", headers=headers, timeout=60).json()
        dataset_id = (status.get("payload") or {}).get("dataset_id")
        if status.get("status") == "error":
            return {"submit": f"error: {status.get('error_message')}"}
        if dataset_id:
            counts = requests.get(f"{server.url}/datasets/{dataset_id}/task_counts/status", headers=headers,
                                  timeout=60).json()
            if sum(counts.values()) >= 3 * jobs:
                return {"submit_jobs": jobs, "submit_tasks": 3 * jobs,
                        "submit_to_materialized_s": round(time.perf_counter() - began, 2)}
        time.sleep(0.25)
    return {"submit": f"not materialized within {timeout:g} s", "dataset_id": dataset_id}


def run_benchmark(tasks: int, seconds: float, open_seconds: float, repeat: int, submit_jobs: int,
                  store_dir: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "claim", "tasks_queued": tasks, "store": "sqlite",
                              "durable_commits": os.environ.get("FRAZIL_DURABLE_COMMITS", "true"),
                              "cpus": os.cpu_count(), "loadavg_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="frazil-claim-") as tmp:
        folder = pathlib.Path(store_dir or tmp)
        db = f"sqlite:///{folder}/frazil.db"
        if (folder / "frazil.db").exists():
            result["reused_store"] = str(folder)  # filled by an earlier run (minus the tasks it completed)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            result.update(asyncio.run(fill_store(db, tasks)))
        server = ServerProcess(db, folder / "data", env={
            "FRAZIL_CLAIM_RATE_PER_PILOT": "1000000", "FRAZIL_LOG_LEVEL": "warning"})
        server.start()
        try:
            token = server.token("bench-pilot", role="system")  # one token for many simulated pilots
            with RssSampler(server.pid) as rss:
                runs = [client_process("closed", url=server.url, token=token, pilots=64, seconds=seconds,
                                       server_pid=server.pid) for _ in range(repeat)]
                result["closed_loop_runs"] = [r["cycles_per_s"] for r in runs]
                result["a_cycles_per_s"] = statistics.median(result["closed_loop_runs"])
                # the target (DESIGN.md §5): server CPU per claim+complete cycle, from its own counters
                result["a_server_cpu_ms_per_cycle_runs"] = [r["server_cpu_ms_per_cycle"] for r in runs]
                result["a_server_cpu_ms_per_cycle"] = statistics.median(result["a_server_cpu_ms_per_cycle_runs"])
                result["a_cycles_per_server_cpu_s"] = round(1000 / max(result["a_server_cpu_ms_per_cycle"], 1e-6))
                if open_seconds:
                    opened = client_process("open", url=server.url, token=token, pilots=1000, rate=300.0,
                                            seconds=open_seconds)
                    result.update({"b_" + k: v for k, v in opened.items()})
            result["c_server_rss_mb"] = round(rss.peak / 2**20, 1)
            if submit_jobs:
                result.update(time_submit(server, submit_jobs))
        except Exception:
            print(f"server log (tail):\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            server.stop()
    port = free_port()
    trivial = subprocess.Popen([sys.executable, "-m", "benchmarks.claim", "--trivial-server", str(port)], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_port(port)
        ceiling = [client_process("closed", url=f"http://127.0.0.1:{port}", token="x", pilots=64,
                                  seconds=seconds, register=False, server_pid=trivial.pid) for _ in range(repeat)]
    finally:
        trivial.terminate()
        trivial.wait(timeout=30)
    result["d_trivial_cycles_per_s"] = statistics.median(r["cycles_per_s"] for r in ceiling)
    result["d_trivial_req_per_s"] = round(2 * result["d_trivial_cycles_per_s"], 1)
    # a cycle is two requests: the floor aiohttp itself costs per request on this machine
    result["d_trivial_cpu_ms_per_request"] = statistics.median(
        round(r["server_cpu_ms_per_cycle"] / 2, 4) for r in ceiling)
    result["a_over_d"] = round(result["a_cycles_per_s"] / result["d_trivial_cycles_per_s"], 3)
    # other work on the machine shifts every number: state how busy it was
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    result["targets"] = {"a_cycles_per_s": 800, "a_server_cpu_ms_per_cycle": 1.0, "b_p99_ms": 50,
                         "c_server_rss_mb": 500, "submit_to_materialized_s": 20}
    return result


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks queued before the run (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 tasks, short phases, no repeats")
    parser.add_argument("--seconds", type=float, default=15.0, help="closed-loop measuring time per run")
    parser.add_argument("--open-seconds", type=float, default=30.0, help="open-loop duration (0 = skip)")
    parser.add_argument("--repeat", type=int, default=3, help="closed-loop runs (the median is reported)")
    parser.add_argument("--submit-jobs", type=int, default=100_000, help="jobs of the submit timing (0 = skip)")
    parser.add_argument("--store-dir", help="keep the filled store in this folder and reuse it on the next run")
    parser.add_argument("--client", choices=["closed", "open"], help=argparse.SUPPRESS)
    parser.add_argument("--client-args", help=argparse.SUPPRESS)
    parser.add_argument("--trivial-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trivial_server:
        run_trivial_server(args.trivial_server)
        return 0
    if args.client:
        kwargs = json.loads(args.client_args)
        runner = closed_loop if args.client == "closed" else open_loop
        print(json.dumps(asyncio.run(runner(**kwargs))))
        return 0
    if args.tasks < 1:
        parser.error("--tasks must be >= 1")
    if args.quick:
        args.tasks, args.seconds, args.open_seconds, args.repeat = min(args.tasks, 20_000), 3.0, 5.0, 1
        args.submit_jobs = min(args.submit_jobs, 2_000)
    print(json.dumps(run_benchmark(args.tasks, args.seconds, args.open_seconds, args.repeat, args.submit_jobs,
                                    args.store_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
