"""The background-loop service of ``frazil server`` and its small runner.

Each named loop is one asyncio task that, every ``loop_interval_seconds``
(or at once when woken: :func:`wake`), takes the store lease named after it
and does one round of work. The lease is what lets several replicas share a
store: exactly one of them runs each loop at a time, and if it dies another
takes over when the lease runs out. A round that fails is logged and retried
with exponential backoff; the loop itself never dies on an exception, and
it stops within a moment on shutdown.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web

from server.keys import CLAIM_CACHE, LOG_RETENTION, LOOP_RUNNER, METRICS, SCHEDULER, SETTINGS, STORE, WORK_SIGNAL
from server.metrics import ServerMetrics
from server.scheduling.alerts import AlertWatch
from server.scheduling.loops import Scheduler
from server.scheduling.monitor import DatasetMonitor
from server.scheduling.quarantine import QuarantineWatch
from server.scheduling.retention import LogRetention
from server.settings import Settings
from server.store import Store

log = logging.getLogger("frazil.server.loops")

MAX_BACKOFF_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0
ACTIONS_CLEANUP_SECONDS = 3600.0
SLOW_ROUND_SECONDS = 5.0


@dataclass
class LoopSpec:
    name: str
    step: Callable[[], Awaitable[bool]]
    """One round; True = stopped at a batch limit, go again at once."""
    interval: float


def instance_id(settings: Settings) -> str:
    """This server's identity as a lease holder: host and port.

    Only one process can listen on a host's port, so a server restarted
    after a crash (kill -9, OOM) is the same holder and takes its loops back
    at once instead of waiting for its own dead leases to run out."""
    return f"{socket.gethostname()}:{settings.port}"


class LoopRunner:
    """Runs each loop under its store lease (``loop.<name>``), held as ``holder``."""

    def __init__(self, store: Store, holder: str, metrics: ServerMetrics, specs: list[LoopSpec],
                 stop_grace: float = STOP_GRACE_SECONDS) -> None:
        self.store = store
        self.holder = holder
        self.metrics = metrics
        self.stop_grace = stop_grace
        self.specs = {spec.name: spec for spec in specs}
        self._wakeups = {name: asyncio.Event() for name in self.specs}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def lease_seconds(self, spec: LoopSpec) -> float:
        # Long enough to survive a slow round, short enough that a dead
        # replica's loops move to another one within a minute or so.
        return max(30.0, 10 * spec.interval)

    def wake(self, name: str) -> None:
        """Run loop ``name`` now instead of at its next interval (no-op for unknown names)."""
        event = self._wakeups.get(name)
        if event is not None:
            event.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(spec), name=f"frazil-loop-{spec.name}")
                       for spec in self.specs.values()]

    async def stop(self) -> None:
        self._stopping.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self.stop_grace)
        for task in pending:  # a round stuck in a long store call: cut it short
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        store = self.store
        for name in self.specs:
            try:
                await store.release_lease(f"loop.{name}", self.holder)
            except Exception:  # the store may already be unusable; the lease just runs out
                log.warning("could not release loop lease", extra={"loop": name}, exc_info=True)

    async def _run(self, spec: LoopSpec) -> None:
        metrics = self.metrics
        store = self.store
        wakeup = self._wakeups[spec.name]
        failures = 0
        while not self._stopping.is_set():
            wakeup.clear()
            more = False
            started = time.perf_counter()
            try:
                if await store.acquire_lease(f"loop.{spec.name}", self.holder, self.lease_seconds(spec)):
                    more = await spec.step()
                    took = time.perf_counter() - started
                    metrics.loop_runs.labels(spec.name, "ok").inc()
                    metrics.loop_seconds.labels(spec.name).observe(took)
                    if took > SLOW_ROUND_SECONDS:  # the operator's first clue when the server feels slow
                        log.warning("slow loop round", extra={"loop": spec.name, "seconds": round(took, 2)})
                else:
                    metrics.loop_runs.labels(spec.name, "standby").inc()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                metrics.loop_runs.labels(spec.name, "error").inc()
                log.exception("loop round failed", extra={"loop": spec.name, "failures": failures})
            if failures:
                delay = min(spec.interval * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
            else:
                delay = 0.0 if more else spec.interval
            await self._sleep(wakeup, delay, allow_wake=not failures)

    async def _sleep(self, wakeup: asyncio.Event, delay: float, allow_wake: bool) -> None:
        """Wait ``delay`` seconds, or less when stopping (or when woken, unless backing off)."""
        if delay <= 0:
            await asyncio.sleep(0)  # let requests in between rounds
            return
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if allow_wake:
            waiters.append(asyncio.ensure_future(wakeup.wait()))
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def loop_specs(scheduler: Scheduler, interval: float) -> list[LoopSpec]:
    """The loops in pipeline order (DESIGN.md §1); provisioning is its own service."""
    return [
        LoopSpec("materialize", scheduler.materialize, interval),
        LoopSpec("release", scheduler.release, interval),
        LoopSpec("queue", scheduler.queue, interval),
        LoopSpec("reap", scheduler.reap, interval),
        LoopSpec("rollup", scheduler.rollup, interval),
        LoopSpec("actions_cleanup", scheduler.cleanup_actions, max(interval, ACTIONS_CLEANUP_SECONDS)),
    ]


def upkeep_specs(monitor: DatasetMonitor, retention: LogRetention, watch: QuarantineWatch,
                 settings: Settings, alerts: AlertWatch | None = None) -> list[LoopSpec]:
    """Loops outside the task pipeline: the per-dataset gauges, log retention, quarantine, alerts."""
    interval = settings.loop_interval_seconds
    return ([LoopSpec("alerts", alerts.run, max(interval, settings.alert_check_seconds))] if alerts else []) + [
        LoopSpec("quarantine", watch.run, max(interval, settings.quarantine_check_seconds)),
        LoopSpec("dataset_metrics", monitor.refresh, max(interval, min(settings.dataset_metrics_seconds, 10.0))),
        LoopSpec("log_retention", retention.run, max(interval, settings.log_cleanup_seconds)),
    ]


def wake(app: web.Application, name: str) -> None:
    """Ask loop ``name`` (materialize, release, queue, reap, rollup) to run now,
    e.g. after a submit or a report; harmless when loops are off."""
    runner = app.get(LOOP_RUNNER)
    if runner is not None:
        runner.wake(name)


def note_task_change(app: web.Application, dataset_id: str, job_id: str | None = None) -> None:
    """Tasks of this job changed outside the loops (a bulk status change, ...):
    roll the job and dataset up soon rather than at the next sweep."""
    scheduler = app.get(SCHEDULER)
    if scheduler is not None:
        scheduler.note_changed(dataset_id, job_id)
        wake(app, "rollup")


async def service(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx generator: start the loops after the store opened, stop
    them before it closes."""
    settings = app[SETTINGS]
    scheduler = Scheduler(app[STORE], settings, lambda name: wake(app, name), app[METRICS],
                          on_queued=app[WORK_SIGNAL].notify)
    retention = app[LOG_RETENTION] = LogRetention(app[STORE], settings, app[METRICS])
    runner = LoopRunner(app[STORE], instance_id(settings), app[METRICS],
                        loop_specs(scheduler, settings.loop_interval_seconds)
                        + upkeep_specs(DatasetMonitor(app[STORE], settings, app[METRICS]), retention,
                                       QuarantineWatch(app[STORE], settings, app[CLAIM_CACHE].quarantines.forget),
                                       settings, AlertWatch(app[STORE], settings)))
    app[SCHEDULER] = scheduler
    app[LOOP_RUNNER] = runner
    runner.start()
    log.info("loops started", extra={"loops": list(runner.specs), "holder": runner.holder})
    try:
        yield
    finally:
        await runner.stop()
        log.info("loops stopped")
