"""Issue 16 item 6: IceProd's dataset-monitor gauges on /metrics, filled by
the running server's ``dataset_metrics`` loop from real store counts, bounded
to the newest active datasets."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
from typing import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.resources import Resources
from server.settings import Settings
from server.store import AttemptResult, ClaimRequest, NewDataset, NewPilot, Store, TaskFilter, open_store
from tests.server.conftest import RunningServer, start_server

DEMO = json.loads((pathlib.Path(__file__).parents[2] / "examples" / "local-demo.json").read_text())


@pytest.fixture
async def live(server_settings: Settings) -> AsyncIterator[RunningServer]:
    settings = dataclasses.replace(server_settings, loops=True, loop_interval_seconds=0.2,
                                   dataset_metrics_seconds=0.3, dataset_metrics_max=2)
    store = await open_store(settings.db)
    runner, running = await start_server(settings, store)
    try:
        yield running
    finally:
        await runner.cleanup()
        await store.close()


async def make_dataset(store: Store, jobs: int) -> tuple[str, int]:
    ds = await store.create_dataset(NewDataset(description="t", jobs_submitted=jobs, tasks_per_job=2,
                                               group="users", username="alice"))
    await store.add_config_version(ds.dataset_id, DEMO, "alice")
    return ds.dataset_id, ds.dataset


async def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {family.name: [(s.labels, s.value) for s in family.samples]
            for family in text_string_to_metric_families(text) if family.name.startswith("frazil_dataset_")}


async def wait_for(url: str, check) -> dict[str, list[tuple[dict[str, str], float]]]:
    for _ in range(100):
        metrics = await scrape(url)
        if check(metrics):
            return metrics
        await asyncio.sleep(0.1)
    raise AssertionError(f"gauges never matched: {metrics}")


def value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float | None:
    found = [v for l, v in samples if l == labels]
    return found[0] if found else None


async def test_dataset_gauges_follow_the_store_and_stay_bounded(live: RunningServer) -> None:
    store = live.store
    oldest, oldest_number = await make_dataset(store, jobs=1)
    done, done_number = await make_dataset(store, jobs=1)
    await store.set_dataset_status(done, "complete", force=True)  # finished: not monitored
    middle, middle_number = await make_dataset(store, jobs=2)
    newest, newest_number = await make_dataset(store, jobs=3)

    metrics = await wait_for(live.url, lambda m: value(m.get("frazil_dataset_tasks", []), dataset=str(newest_number),
                                                         task="generate", status="queued") is not None)
    labelled = {l["dataset"] for family in metrics.values() for l, _ in family}
    assert labelled == {str(middle_number), str(newest_number)}  # the cap (2) keeps the newest active ones
    assert value(metrics["frazil_dataset_jobs"], dataset=str(newest_number), status="processing") == 3
    tasks = metrics["frazil_dataset_tasks"]
    assert value(tasks, dataset=str(newest_number), task="generate", status="queued") == 3
    assert value(tasks, dataset=str(newest_number), task="combine", status="idle") == 3
    # no completed task yet: no estimate of what is left
    assert value(metrics["frazil_dataset_future_resource_hours"], dataset=str(newest_number), resource="cpu") == 0

    # one "generate" task of the newest dataset completes after 2 hours of wall time
    pilot_id = await store.register_pilot(NewPilot(resources={"cpu": 8}))
    claimed = None
    for _ in range(50):
        claimed = await store.claim(ClaimRequest(pilot_id=pilot_id, free=Resources(cpu=8, gpu=0, memory=16.0,
                                                                                   disk=100.0, time=24.0)))
        if claimed.task is not None and claimed.task.dataset_id == newest:
            break
    assert claimed is not None and claimed.task is not None and claimed.task.dataset_id == newest
    assert (await store.complete(claimed.task.task_id, claimed.instance_id, AttemptResult(time_used=7200))).applied
    counts = await store.task_counts_by_status(TaskFilter(dataset_id=newest))
    unfinished = sum(counts.get(s, 0) for s in ("idle", "waiting", "queued", "processing"))
    assert unfinished == 5

    # 2 generate tasks left × 2 h; the filter tasks have no completed example yet
    metrics = await wait_for(live.url, lambda m: value(m.get("frazil_dataset_future_resource_hours", []),
                                                         dataset=str(newest_number), resource="cpu") == 4.0)
    assert value(metrics["frazil_dataset_tasks"], dataset=str(newest_number), task="generate", status="complete") == 1

    await store.set_dataset_status(newest, "complete", force=True)
    metrics = await wait_for(live.url, lambda m: str(newest_number) not in
                             {l["dataset"] for family in m.values() for l, _ in family})
    assert {l["dataset"] for family in metrics.values() for l, _ in family} == {str(oldest_number),
                                                                                str(middle_number)}
    assert oldest and done_number and middle
