"""Soak (issue 11): the real ``frazil server`` (SQLite, background loops on)
with ``--tasks`` queued tasks (default 100,000), ``--pilots`` simulated pilots
(default 200) and one browsing user, for ``--minutes`` (default 30).

Each simulated pilot registers, heartbeats every ``--heartbeat`` seconds
(with the tasks it holds), claims a task, "runs" it for a random 2–6 s,
then reports it: complete (95 %) or reset with a memory failure (5 %, the
retry path with escalation), and claims again. The browsing user signs in
through ``/login`` like a browser and walks the dataset list, the dataset
page, its status JSON, a filtered task list, one task's page, the plots and
the admin dashboard, one page a second.

Every ``--sample`` seconds the server's RSS (from /proc, its own counters)
and CPU time are recorded; at the end one JSON line gives the RSS series,
error counts by kind, p50/p99 of claims, reports, heartbeats and pages, and
whether the memory levelled off: the growth of the RSS over the second half
of the run (MB per 10 min) against its growth over the first half.

    python -m benchmarks.soak [--minutes 30] [--pilots 200] [--tasks 100000]

Progress lines (one per sample) go to stderr.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import random
import re
import html
import sys
import tempfile
import time
from collections import Counter, defaultdict
from typing import Any

import aiohttp

from benchmarks.claim import PILOT_RESOURCES, fill_store
from benchmarks.server_process import ServerProcess

RUN_SECONDS = (2.0, 6.0)
RESET_SHARE = 0.05


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.first_error: dict[str, str] = {}
        """The first reply body of each kind of error (what went wrong, briefly)."""

    def record(self, kind: str, began: float) -> None:
        self.latency[kind].append(time.perf_counter() - began)
        self.counts[kind] += 1

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, values in sorted(self.latency.items()):
            values.sort()
            pick = lambda q: round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)  # noqa: E731
            out[kind] = {"n": len(values), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": pick(1.0)}
        return out


async def _request(session: aiohttp.ClientSession, stats: Stats, kind: str, method: str, url: str,
                   ok: tuple[int, ...] = (200,), **kwargs: Any) -> tuple[int, Any]:
    began = time.perf_counter()
    try:
        async with session.request(method, url, **kwargs) as reply:
            body = await reply.read()
            stats.record(kind, began)
            if reply.status not in ok:
                stats.errors[f"{kind}:{reply.status}"] += 1
                stats.first_error.setdefault(f"{kind}:{reply.status}", body[:300].decode(errors="replace"))
            return reply.status, body
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        stats.errors[f"{kind}:{type(exc).__name__}"] += 1
        return 0, b""


async def pilot(session: aiohttp.ClientSession, url: str, stats: Stats, index: int, end: float,
                heartbeat: float, rng: random.Random) -> None:
    status, body = await _request(session, stats, "register", "POST", f"{url}/pilots", json={
        "resources": PILOT_RESOURCES, "site": "soak", "hostname": f"soak{index}"}, ok=(200, 201))
    if status not in (200, 201):
        return
    pilot_id = json.loads(body)["result"]
    held: list[str] = []

    async def beats() -> None:
        await asyncio.sleep(rng.uniform(0, heartbeat))
        while time.perf_counter() < end:
            await _request(session, stats, "heartbeat", "PATCH", f"{url}/pilots/{pilot_id}",
                           json={"free": PILOT_RESOURCES, "tasks": list(held)})
            await asyncio.sleep(heartbeat)

    beater = asyncio.create_task(beats())
    try:
        while time.perf_counter() < end:
            status, body = await _request(session, stats, "claim", "POST", f"{url}/task_actions/process",
                                          ok=(200, 404), json={"pilot_id": pilot_id, "resources": PILOT_RESOURCES,
                                                               "site": "soak"})
            if status != 200:
                stats.counts["claim_empty" if status == 404 else "claim_failed"] += 1
                await asyncio.sleep(2.0)
                continue
            task = json.loads(body)
            held.append(task["task_id"])
            ran = rng.uniform(*RUN_SECONDS)
            await asyncio.sleep(ran)
            report = {"instance_id": task["instance_id"], "time_used": ran, "hostname": f"soak{index}"}
            if rng.random() < RESET_SHARE:
                report.update({"class": "non-physics", "kind": "memory", "reason": "soak: out of memory",
                               "resources": {"memory": 1.2}})
                await _request(session, stats, "reset", "POST",
                               f"{url}/tasks/{task['task_id']}/task_actions/reset", json=report)
            else:
                await _request(session, stats, "complete", "POST",
                               f"{url}/tasks/{task['task_id']}/task_actions/complete", json=report)
            held.remove(task["task_id"])
    finally:
        beater.cancel()
        await asyncio.gather(beater, return_exceptions=True)


async def browser(url: str, token: str, dataset_id: str, admin_token: str, stats: Stats, end: float) -> None:
    """Pages through a signed-in browser session; one task's id through the JSON API (bearer token)."""
    async def sign_in(client: aiohttp.ClientSession, value: str) -> None:
        async with client.get(f"{url}/login") as reply:
            form = await reply.text()
        match = re.search(r'name="csrf_token" value="([^"]*)"', form)
        if match is None:
            raise RuntimeError("the login page has no CSRF field")
        async with client.post(f"{url}/login", allow_redirects=False,
                               data={"csrf_token": html.unescape(match.group(1)), "token": value}) as reply:
            if reply.status != 303:
                raise RuntimeError(f"sign-in failed: HTTP {reply.status}")

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout) as user, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout) as admin, \
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as api:
        await sign_in(user, token)
        await sign_in(admin, admin_token)
        pages = [(user, "page_datasets", "/dataset"), (user, "page_dataset", f"/dataset/{dataset_id}"),
                 (user, "page_status_json", f"/dataset/{dataset_id}/status.json"),
                 (user, "page_task_list", f"/dataset/{dataset_id}/task?status=processing"),
                 (user, "page_plots", f"/dataset/{dataset_id}/plots"), (admin, "page_admin", "/admin")]
        turn = 0
        while time.perf_counter() < end:
            client, kind, path = pages[turn % len(pages)]
            turn += 1
            await _request(client, stats, kind, "GET", url + path)
            if turn % len(pages) == 0:  # one task's page, found through the JSON API
                status, body = await _request(api, stats, "api_tasks", "GET",
                                              f"{url}/datasets/{dataset_id}/tasks?status=complete&limit=1")
                rows = json.loads(body) if status == 200 else {}
                task_id = next(iter(rows), None) if isinstance(rows, dict) else None
                if task_id:
                    await _request(user, stats, "page_task", "GET", f"{url}/dataset/{dataset_id}/task/{task_id}")
            await asyncio.sleep(1.0)


def _growth(samples: list[dict[str, Any]], first: float, last: float) -> float | None:
    """RSS growth in MB per 10 minutes over samples in [first, last) seconds."""
    part = [s for s in samples if first <= s["t_s"] < last]
    if len(part) < 2 or part[-1]["t_s"] == part[0]["t_s"]:
        return None
    return round((part[-1]["rss_mb"] - part[0]["rss_mb"]) / (part[-1]["t_s"] - part[0]["t_s"]) * 600, 1)


async def soak(server: ServerProcess, dataset_id: str, minutes: float, pilots: int, heartbeat: float,
               sample: float) -> dict[str, Any]:
    stats = Stats()
    pilot_token = server.token("soak-pilot", role="system")
    user_token = server.token("bench", groups="users")
    admin_token = server.token("soak-admin", role="admin", groups="admin")
    began = time.perf_counter()
    end = began + minutes * 60
    rng = random.Random(11)
    samples: list[dict[str, Any]] = []
    cpu0 = _cpu_s(server.pid)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {pilot_token}"}, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        workers = [asyncio.create_task(pilot(session, server.url, stats, i, end, heartbeat,
                                             random.Random(rng.random()))) for i in range(pilots)]
        workers.append(asyncio.create_task(browser(server.url, user_token, dataset_id, admin_token, stats, end)))
        while time.perf_counter() < end:
            await asyncio.sleep(min(sample, max(end - time.perf_counter(), 0.01)))
            point = {"t_s": round(time.perf_counter() - began), "rss_mb": round(_rss_mb(server.pid), 1),
                     "cpu_s": round(_cpu_s(server.pid) - cpu0, 1), "completes": stats.counts["complete"],
                     "errors": sum(stats.errors.values()), "load1": round(os.getloadavg()[0], 2)}
            samples.append(point)
            print(json.dumps(point), file=sys.stderr, flush=True)
        done = await asyncio.gather(*workers, return_exceptions=True)
    crashed = [repr(r) for r in done if isinstance(r, BaseException)]
    elapsed = time.perf_counter() - began
    half = elapsed / 2
    reports = stats.counts["complete"] + stats.counts["reset"]
    cpu = _cpu_s(server.pid) - cpu0
    return {
        "minutes": round(elapsed / 60, 2), "pilots": pilots, "rss_mb": samples,
        "rss_start_mb": samples[0]["rss_mb"] if samples else None,
        "rss_peak_mb": max((s["rss_mb"] for s in samples), default=None),
        "rss_end_mb": samples[-1]["rss_mb"] if samples else None,
        "rss_growth_first_half_mb_per_10min": _growth(samples, 0, half),
        "rss_growth_second_half_mb_per_10min": _growth(samples, half, elapsed + 1),
        "counts": dict(stats.counts), "errors": dict(stats.errors), "first_errors": stats.first_error, "client_crashes": crashed,
        "latency": stats.summary(), "reports_per_s": round(reports / elapsed, 1),
        "server_cpu_s": round(cpu, 1), "server_cpu_ms_per_report": round(1000 * cpu / max(reports, 1), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the load runs (default 30)")
    parser.add_argument("--pilots", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=100_000, help="queued tasks before the run")
    parser.add_argument("--heartbeat", type=float, default=30.0, help="seconds between a pilot's heartbeats")
    parser.add_argument("--sample", type=float, default=15.0, help="seconds between RSS samples")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.pilots < 1 or args.tasks < 1 or args.sample <= 0 or args.heartbeat <= 0:
        parser.error("--minutes, --sample and --heartbeat must be > 0; --pilots and --tasks >= 1")
    result: dict[str, Any] = {"benchmark": "soak", "tasks_queued": args.tasks, "cpus": os.cpu_count(),
                              "loadavg_before": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="frazil-soak-") as tmp:
        db = f"sqlite:///{tmp}/frazil.db"
        filled = asyncio.run(fill_store(db, args.tasks))
        result["fill_s"] = filled["fill_s"]
        asyncio.run(_grant(db, filled["dataset_id"]))
        server = ServerProcess(db, pathlib.Path(tmp) / "data", env={"FRAZIL_LOG_LEVEL": "warning"})
        server.start()
        try:
            result.update(asyncio.run(soak(server, filled["dataset_id"], args.minutes, args.pilots,
                                           args.heartbeat, args.sample)))
        except Exception:
            print(f"server log (tail):\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            server.stop()
        result["server_exit_code"] = server.proc.returncode if server.proc else None
    result["loadavg_after"] = list(os.getloadavg())
    print(json.dumps(result))
    return 0


async def _grant(db: str, dataset_id: str) -> None:
    """The browsing user ``bench`` (the dataset's owner) may read it."""
    from server.auth import default_rights
    from server.store import open_store

    store = await open_store(db)
    try:
        await store.set_dataset_rights(dataset_id, default_rights("bench", "users"))
    finally:
        await store.close()


if __name__ == "__main__":
    raise SystemExit(main())
