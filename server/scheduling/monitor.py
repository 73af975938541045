"""IceProd's dataset monitor (``scheduled_tasks/dataset_monitor``) as a
background loop: jobs by status, tasks by name and status and the slot-hours
still to run, per active dataset, counted into a snapshot that ``/metrics``
exports (:class:`server.metrics.DatasetCollector`).

A scrape never counts anything. The counts cost as much as the datasets are
large, so a round runs at most every ``dataset_metrics_seconds`` or
``COUNT_COST_FACTOR`` times what the last one took, whichever is longer.
Cardinality is bounded: only datasets in an active status, the newest
``dataset_metrics_max`` of them.
"""
from __future__ import annotations

import time
from typing import Any

from server.metrics import DatasetSnapshot, ServerMetrics
from server.settings import Settings
from server.store import DatasetFilter, ListOptions, Store

MONITORED_STATUSES = ("processing", "suspended", "errors")
"""Datasets whose numbers still move; complete ones drop out of the gauges."""
UNFINISHED = ("idle", "waiting", "queued", "processing")
"""Task statuses whose work is still to run (suspended and failed wait for a person)."""
COUNT_COST_FACTOR = 100.0


def future_hours(names: dict[str, dict[str, int]], stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """Slot-hours the unfinished tasks still need, by resource: each task
    name's unfinished tasks × its mean wall hours over completed tasks, as
    ``gpu`` when those tasks asked for GPUs, else ``cpu``. A name with no
    completed task yet has no estimate and adds nothing."""
    hours = {"cpu": 0.0, "gpu": 0.0}
    for name, counts in names.items():
        stat = stats.get(name)
        if not stat or not stat.get("count"):
            continue
        remaining = sum(counts.get(s, 0) for s in UNFINISHED)
        resource = "gpu" if stat.get("gpu", 0) > 0 else "cpu"
        hours[resource] += remaining * float(stat.get("avg_hrs", 0.0))
    return hours


class DatasetMonitor:
    """Counts the active datasets into ``metrics.datasets.snapshot``."""

    def __init__(self, store: Store, settings: Settings, metrics: ServerMetrics) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self._next = 0.0

    async def active_datasets(self) -> list[dict[str, Any]]:
        """The newest ``dataset_metrics_max`` datasets in a monitored status."""
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_datasets(DatasetFilter(status=list(MONITORED_STATUSES)),
                                                  ListOptions(limit=1000, after=cursor,
                                                              keys=["dataset_id", "dataset"]))
            rows.extend(page.rows)
            cursor = page.next_cursor
            if cursor is None:
                break
        rows.sort(key=lambda row: row["dataset"], reverse=True)
        return rows[:max(self.settings.dataset_metrics_max, 0)]

    async def refresh(self, now: float | None = None) -> bool:
        """One round (a loop step): recount when due; never "more to do"."""
        now = time.monotonic() if now is None else now
        if now < self._next:
            return False
        started = time.monotonic()
        snap = DatasetSnapshot()
        for row in await self.active_datasets():
            dataset_id, number = row["dataset_id"], int(row["dataset"])
            snap.jobs[number] = await self.store.job_counts_by_status(dataset_id)
            names = await self.store.task_counts_by_name_status(dataset_id)
            snap.tasks[number] = names
            snap.future_hours[number] = future_hours(names, await self.store.task_stats_by_name(dataset_id))
        self.metrics.datasets.snapshot = snap
        cost = time.monotonic() - started
        self._next = now + max(self.settings.dataset_metrics_seconds, COUNT_COST_FACTOR * cost)
        return False
