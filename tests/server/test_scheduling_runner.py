"""The loop runner: leases between replicas, wake-ups, error backoff, prompt
stop; and the whole service inside a real server moving a new dataset's
tasks to queued on its own."""
from __future__ import annotations

import asyncio
import json
import pathlib
import time
from typing import AsyncIterator

import pytest
from aiohttp import web

from server.app import create_app
from server.keys import LOOP_RUNNER, METRICS, SCHEDULER, SETTINGS, STORE
from server.scheduling import service
from server.scheduling.service import LoopRunner, LoopSpec, instance_id, note_task_change, wake
from server.settings import Settings
from server.store import NewDataset, Store, TaskFilter, open_store
from tests.server.conftest import free_port, start_server

DEMO = json.loads((pathlib.Path(__file__).parents[2] / "examples" / "local-demo.json").read_text())


def make_app(store: Store, tmp_path: pathlib.Path, port: int = 8080) -> web.Application:
    settings = Settings(db="sqlite:///unused.db", data_dir=str(tmp_path / "data"), provider="none", port=port)
    app = create_app(settings, store=store, routes=(), services=())
    app[STORE] = store
    return app


def runner_for(app: web.Application, specs: list[LoopSpec], **kwargs) -> LoopRunner:
    """A runner wired as the scheduling service wires it."""
    return LoopRunner(app[STORE], instance_id(app[SETTINGS]), app[METRICS], specs, **kwargs)


def count(app: web.Application, loop: str, result: str) -> float:
    return app[METRICS].loop_runs.labels(loop, result)._value.get()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_wake_runs_a_loop_before_its_interval(store: Store, tmp_path) -> None:
    app = make_app(store, tmp_path)
    runs: list[float] = []

    async def step() -> bool:
        runs.append(time.monotonic())
        return False

    runner = runner_for(app, [LoopSpec("one", step, interval=3600)])
    runner.start()
    try:
        await wait_for(lambda: len(runs) == 1)
        runner.wake("one")
        runner.wake("no-such-loop")  # harmless
        await wait_for(lambda: len(runs) == 2)
        assert count(app, "one", "ok") == 2
    finally:
        await runner.stop()


async def test_a_full_batch_runs_again_at_once(store: Store, tmp_path) -> None:
    app = make_app(store, tmp_path)
    left = [3]

    async def step() -> bool:
        left[0] -= 1
        return left[0] > 0

    runner = runner_for(app, [LoopSpec("batches", step, interval=3600)])
    runner.start()
    try:
        await wait_for(lambda: left[0] == 0)
    finally:
        await runner.stop()


async def test_errors_are_logged_backed_off_and_survived(store: Store, tmp_path, caplog) -> None:
    app = make_app(store, tmp_path)
    calls: list[float] = []

    async def step() -> bool:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise RuntimeError("store hiccup")
        return False

    runner = runner_for(app, [LoopSpec("flaky", step, interval=0.1)])
    runner.start()
    try:
        await wait_for(lambda: len(calls) >= 3)
        assert count(app, "flaky", "error") == 2
        assert count(app, "flaky", "ok") >= 1
        # backoff: the second retry waited twice the interval
        assert calls[2] - calls[1] >= 0.2 - 0.02
        assert "loop round failed" in caplog.text and "store hiccup" in caplog.text
    finally:
        await runner.stop()


async def test_only_the_lease_holder_runs_a_loop(store: Store, tmp_path) -> None:
    runs = {"a": 0, "b": 0}

    def stepper(name: str):
        async def step() -> bool:
            runs[name] += 1
            return False
        return step

    app_a, app_b = make_app(store, tmp_path / "a", 8081), make_app(store, tmp_path / "b", 8082)
    a = runner_for(app_a, [LoopSpec("shared", stepper("a"), interval=0.02)])
    b = runner_for(app_b, [LoopSpec("shared", stepper("b"), interval=0.02)])
    assert a.holder != b.holder  # replicas listen on different ports
    assert runner_for(make_app(store, tmp_path / "c", 8081), []).holder == a.holder  # a restart is the same holder
    a.start()
    await wait_for(lambda: runs["a"] >= 1)
    b.start()
    try:
        await wait_for(lambda: count(app_b, "shared", "standby") >= 3)
        assert runs["b"] == 0
        await a.stop()  # releases the lease: the other replica takes over
        await wait_for(lambda: runs["b"] >= 1)
    finally:
        await b.stop()


async def test_stop_is_prompt_even_mid_round(store: Store, tmp_path) -> None:
    app = make_app(store, tmp_path)
    started = asyncio.Event()

    async def stuck() -> bool:
        started.set()
        await asyncio.sleep(3600)
        return False

    runner = runner_for(app, [LoopSpec("stuck", stuck, interval=3600),
                              LoopSpec("idle", lambda: asyncio.sleep(0, result=False), interval=3600)],
                        stop_grace=0.2)
    runner.start()
    await started.wait()
    begun = time.monotonic()
    await runner.stop()
    assert time.monotonic() - begun < 1.0
    assert await store.acquire_lease("loop.stuck", "someone-else", 30)  # released on stop


async def test_service_queues_a_new_dataset_on_its_own(tmp_path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), port=free_port(),
                        provider="none", loop_interval_seconds=0.2)
    store = await open_store(settings.db)
    runner, running = await start_server(settings, store, routes=(),
                                         services=(service.service,))
    try:
        ds = await store.create_dataset(NewDataset(description="t", jobs_submitted=20, tasks_per_job=2,
                                                   group="users", username="alice"))
        await store.add_config_version(ds.dataset_id, DEMO, "alice")
        wake(running.app, "materialize")
        deadline = time.monotonic() + 10
        while True:
            counts = await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id))
            if counts.get("queued") == 20:
                break
            assert time.monotonic() < deadline, counts
            await asyncio.sleep(0.05)
        assert counts == {"queued": 20, "idle": 20}
        assert isinstance(running.app[LOOP_RUNNER], LoopRunner)
        assert running.app[METRICS].queued._value.get() == 20
    finally:
        await runner.cleanup()
        await store.close()


async def test_wake_and_note_are_harmless_without_loops(store: Store, tmp_path) -> None:
    app = make_app(store, tmp_path)
    wake(app, "queue")
    note_task_change(app, "some-dataset", "some-job")  # loops off: nothing to do, no error


async def test_note_task_change_rolls_the_job_up_early(tmp_path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), port=free_port(),
                        provider="none", loop_interval_seconds=3600)
    store = await open_store(settings.db)
    runner, running = await start_server(settings, store, routes=(),
                                         services=(service.service,))
    try:
        scheduler = running.app[SCHEDULER]
        await asyncio.sleep(0.2)  # the first rounds ran; the next are an hour away
        note_task_change(running.app, "ds-1", "job-1")
        assert "ds-1" in scheduler.dirty_datasets or count(running.app, "rollup", "ok") >= 2
        await wait_for(lambda: count(running.app, "rollup", "ok") >= 2)
        assert not scheduler.dirty_jobs and not scheduler.dirty_datasets
    finally:
        await runner.cleanup()
        await store.close()
