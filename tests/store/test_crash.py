"""A writer killed with SIGKILL in the middle of a bulk create or of a claim
loop leaves a consistent store: reopen it and check the invariants."""
from __future__ import annotations

import asyncio
import collections
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from server.store import JobFilter, ListOptions, Store, TaskFilter, open_store

from .crash_writer import BATCH
from .helpers import new_dataset, pilot

REPO = pathlib.Path(__file__).resolve().parents[2]


async def _run_and_kill(url: str, mode: str, dataset_id: str, lines: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.store.crash_writer", url, mode, dataset_id, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    seen = 0
    try:
        while seen < lines:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            if not line:
                err = await proc.stderr.read() if proc.stderr else b""
                raise AssertionError(f"writer exited early: {err.decode(errors='replace')}")
            if not line.startswith(b"open"):
                seen += 1
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def _all_tasks(store: Store, dataset_id: str) -> list[dict]:
    rows: list[dict] = []
    after = None
    while True:
        page = await store.list_tasks(TaskFilter(dataset_id=dataset_id), ListOptions(limit=5000, after=after))
        rows.extend(page.rows)
        if page.next_cursor is None:
            return rows
        after = page.next_cursor


async def _check_invariants(store: Store, dataset_id: str) -> list[dict]:
    tasks = await _all_tasks(store, dataset_id)
    job_ids = [r["job_id"] for r in (await store.list_jobs(JobFilter(dataset_id=dataset_id))).rows]
    per_job = collections.Counter(t["job_id"] for t in tasks)
    assert set(per_job) == set(job_ids), "tasks without their job, or jobs without their tasks"
    assert set(per_job.values()) <= {3}, "a job with only some of its tasks"
    queued = collections.Counter(t["resource_class"] for t in tasks if t["status"] == "queued")
    classes: collections.Counter[str] = collections.Counter()
    for c in await store.queued_classes():
        classes[c.resource_class] += c.queued
    assert classes == queued, "queued counts per resource class disagree with the tasks"
    for t in tasks:
        if t["status"] == "processing" or t["attempts"]:
            attempts = await store.get_attempts(t["task_id"])
            assert len(attempts) == t["attempts"], f"task {t['task_id']} lost or gained an attempt record"
        if t["status"] == "processing":
            assert t["instance_id"] and attempts[-1].instance_id == t["instance_id"]
            assert attempts[-1].status == "processing", "a processing task without its open attempt"
        elif t["attempts"]:
            assert attempts[-1].status != "processing" and not t["instance_id"]
    return tasks


async def test_kill_during_bulk_create(store_url: str) -> None:
    store = await open_store(store_url)
    ds = await new_dataset(store, jobs=10**6, tasks_per_job=3)
    await store.close()
    await _run_and_kill(store_url, "bulk", ds.dataset_id, lines=3)
    store = await open_store(store_url)
    try:
        tasks = await _check_invariants(store, ds.dataset_id)
        assert len(tasks) >= 3 * BATCH * 3
        # the store still works: dependencies release and the next batch creates
        assert await store.release_dependencies() > 0
    finally:
        await store.close()


@pytest.mark.slow
async def test_kill_during_claim_loop(store_url: str) -> None:
    store = await open_store(store_url)
    ds = await new_dataset(store, jobs=300, tasks_per_job=3)
    await store.close()
    await _run_and_kill(store_url, "claim", ds.dataset_id, lines=200)
    store = await open_store(store_url)
    try:
        tasks = await _check_invariants(store, ds.dataset_id)
        statuses = collections.Counter(t["status"] for t in tasks)
        assert statuses["complete"] > 0 and sum(statuses.values()) == 900
        await store.queue_tasks(100)
        assert await store.claim(pilot(cpu=4, gpu=1, memory=8)) is not None
    finally:
        await store.close()
