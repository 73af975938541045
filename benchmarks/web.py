"""Website benchmark (issue 7): the dataset page with 1,000,000 tasks.

Fills a SQLite store with one dataset of ``--tasks`` tasks (jobs of 4 tasks,
created in batches through ``store.create_jobs``; statuses mixed: about half
complete with walltimes, the rest idle, waiting, queued, failed and
suspended), starts the real server (no background loops, so nothing else
competes), signs in through ``/login`` like a browser and times:

* ``dataset_page_ms``: ``GET /dataset/{id}`` (target: median <= 300 ms);
* ``status_json_ms``: the live-update endpoint the page polls;
* ``counts_scan_ms``: the store calls behind the counts, timed directly
  (task counts by name and status, job counts, per-name statistics): what
  the first view of a dataset since the server started waits for, and what
  each background refresh of the shared snapshot costs;
* ``dataset_list_ms``, ``task_list_ms`` (first page of a filtered list),
  ``plots_ms`` (bounded samples), ``admin_ms`` (the dashboard).

Each page gives ``cold`` (the first request: it computes the shared counts
snapshot, see ``server/web/snapshots.py``) and the median and max of
``--requests`` sequential requests after it (served from the snapshot,
refreshed in the background when it gets old). Prints one JSON line.

    python -m benchmarks.web [--tasks 1000000] [--requests 15]
"""
from __future__ import annotations

import argparse
import asyncio
import html
import json
import random
import re
import statistics
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from server.app import create_app
from server.auth import default_rights
from server.keys import TOKENS
from server.settings import Settings
from server.store import NewDataset, NewJob, NewTask, Store, open_store
from server.web.dataset_pages import counts
from tests.server.conftest import free_port

NAMES = ("generate", "propagate", "detector", "filter")
STATUSES = (("complete", 50), ("idle", 15), ("waiting", 15), ("queued", 10), ("failed", 5), ("suspended", 5))
BATCH_JOBS = 2_500
CONFIG = {"version": 3.2, "description": "web benchmark", "tasks": [
    {"name": name, "requirements": {"cpu": 1, "memory": 1.5, "gpu": 1 if name == "detector" else 0},
     "trays": [{"modules": [{"src": f"{name}.py"}]}]} for name in NAMES]}


async def fill(store: Store, tasks: int) -> tuple[str, float]:
    """One dataset of ``tasks`` tasks; returns its id and the tasks/s of creation."""
    jobs = tasks // len(NAMES)
    dataset = await store.create_dataset(NewDataset(description="web benchmark", jobs_submitted=0,
                                                    tasks_per_job=len(NAMES), group="users", username="bench"))
    await store.set_dataset_rights(dataset.dataset_id, default_rights("bench", "users"))
    await store.add_config_version(dataset.dataset_id, CONFIG, "bench", "submitted")
    rng = random.Random(7)
    population = [s for s, weight in STATUSES for _ in range(weight)]
    started = time.perf_counter()
    for first in range(0, jobs, BATCH_JOBS):
        batch = []
        for index in range(first, min(first + BATCH_JOBS, jobs)):
            status = rng.choice(population)
            batch.append(NewJob(job_index=index, tasks=[
                NewTask(name=name, task_index=i, status=status,
                        requirements={"cpu": 1, "memory": 1.5, "gpu": 1 if name == "detector" else 0})
                for i, name in enumerate(NAMES)]))
        await store.create_jobs(dataset.dataset_id, batch, config_version=1)
    rate = jobs * len(NAMES) / (time.perf_counter() - started)
    await store.set_jobs_submitted(dataset.dataset_id, jobs)
    return dataset.dataset_id, rate


async def timed(client: aiohttp.ClientSession, url: str, requests: int) -> dict[str, float]:
    started = time.perf_counter()
    async with client.get(url) as reply:  # the first (cold) request, also a check that the page works
        body = await reply.text()
        if reply.status != 200:
            raise SystemExit(f"{url}: HTTP {reply.status}: {body[:500]}")
    cold = (time.perf_counter() - started) * 1000
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        async with client.get(url) as reply:
            await reply.read()
        times.append((time.perf_counter() - started) * 1000)
    return {"cold": round(cold, 1), "median": round(statistics.median(times), 1), "max": round(max(times), 1)}


async def sign_in(client: aiohttp.ClientSession, base: str, token: str) -> None:
    async with client.get(f"{base}/login") as reply:
        form = await reply.text()
    match = re.search(r'name="csrf_token" value="([^"]*)"', form)
    if match is None:
        raise SystemExit("the login page has no CSRF field")
    async with client.post(f"{base}/login", data={"csrf_token": html.unescape(match.group(1)), "token": token},
                           allow_redirects=False) as reply:
        if reply.status != 303:
            raise SystemExit(f"sign-in failed: HTTP {reply.status}")


async def main(tasks: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=f"sqlite:///{tmp}/frazil.db", data_dir=f"{tmp}/data", port=free_port(),
                            provider="none", loops=False)
        store = await open_store(settings.db)
        dataset_id, rate = await fill(store, tasks)
        scan_started = time.perf_counter()
        await counts(store, dataset_id)
        scan_ms = round((time.perf_counter() - scan_started) * 1000, 1)
        app = create_app(settings, store=store)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", settings.port).start()
        base = f"http://127.0.0.1:{settings.port}"
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
                await sign_in(client, base, app[TOKENS].create("bench", groups=["users"]))
                results = {
                    "dataset_page_ms": await timed(client, f"{base}/dataset/{dataset_id}", requests),
                    "status_json_ms": await timed(client, f"{base}/dataset/{dataset_id}/status.json", requests),
                    "dataset_list_ms": await timed(client, f"{base}/dataset", requests),
                    "task_list_ms": await timed(client, f"{base}/dataset/{dataset_id}/task?status=failed", requests),
                    "plots_ms": await timed(client, f"{base}/dataset/{dataset_id}/plots", max(3, requests // 3)),
                }
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin:
                await sign_in(admin, base, app[TOKENS].create("root", role="admin", groups=["admin"]))
                results["admin_ms"] = await timed(admin, f"{base}/admin", max(3, requests // 3))
        finally:
            await runner.cleanup()
            await store.close()
    return {"benchmark": "web", "backend": "sqlite", "tasks": tasks, "requests": requests,
            "create_tasks_per_s": round(rate), "counts_scan_ms": scan_ms, **results,
            "target_dataset_page_ms": 300, "meets_target": results["dataset_page_ms"]["median"] <= 300}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=15)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.tasks, args.requests))))
