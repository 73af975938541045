"""The work of each background loop, one method per loop (DESIGN.md §1):
materialize → release → queue → reap → roll up → actions cleanup.

Each method does one bounded round and returns True when it stopped at a
batch limit (so the runner goes again at once instead of sleeping). None of
them does a store call per task, nor reads tasks it does not change: task
priorities move with one store call per dataset (base + stored offset),
queueing and release read index ranges per dataset, and the roll-up works on
batches of jobs and probes which job statuses a dataset has.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from server.metrics import ServerMetrics
from server.scheduling.fairshare import FairShare
from server.scheduling.materialize import MaterializeError, materialize
from server.scheduling.pilots import release_pilot_tasks, retry_policy
from server.scheduling.priority import DatasetInputs, dataset_priorities
from server.scratch.files import cleanup_job_scratch
from server.settings import Settings
from server.store import DatasetFilter, JobFilter, ListOptions, Store, TaskFilter
from server.store.records import TIME_FORMAT

log = logging.getLogger("frazil.server.scheduling")

ACTIVE_STATUSES = ("idle", "waiting", "queued", "processing")
"""Tasks that count towards a dataset's share of the backlog (reference §6.3)."""
ACTIONS_KEPT_SECONDS = 86_400.0
MAX_DIRTY = 100_000
"""Jobs remembered for an early roll-up; beyond that the sweep catches them."""
PRIORITY_TOLERANCE = 0.005
"""Dataset priority changes smaller than this are not written (ordering barely
moves, and each write re-prices the dataset's queued tasks)."""
RELEASE_CHUNK = 2_000
"""Most tasks released per store call (one transaction of the single writer)."""
COUNT_COST_FACTOR = 100.0
"""The per-dataset task counts are recounted at most every this many times
the last count took: at most 1 % of a core, at any backlog size."""
ROLLUP_CHUNK = 250
"""Jobs per roll-up store call: short writer transactions, so claims interleave."""
FULL_ROLLUP_SECONDS = 600.0
"""Every processing dataset is rolled up on the first round and then this
often; in between only datasets whose jobs changed (a full pass counts every
job of every dataset, in the store's writer)."""
DATASET_VIEW_SECONDS = 30.0
SWEEP_STATUSES = ("processing", "errors", "suspended")
"""Job statuses the roll-up sweep re-checks (complete is final)."""


@dataclass
class _DatasetView:
    """Processing datasets with their task counts and priorities at ``at``;
    ``cost``: seconds the counts took."""

    datasets: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]
    priorities: dict[str, float]
    at: float
    cost: float


def _age_days(start_date: str, now: float) -> float:
    try:
        started = datetime.datetime.strptime(start_date, TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return 0.0
    return max(now - started.timestamp(), 0.0) / 86_400.0


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Scheduler:
    """State shared by the loops of one server replica."""

    def __init__(self, store: Store, settings: Settings, wake: Callable[[str], None], metrics: ServerMetrics,
                 on_queued: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.settings = settings
        self.wake = wake
        self.metrics = metrics
        self.on_queued = on_queued
        """Wakes claims waiting for work (``WorkSignal.notify``)."""
        self._retry_timer: tuple[float, asyncio.TimerHandle] | None = None
        self.fair_share = FairShare(self.settings.usage_half_life_hours, self.settings.fair_share_weight)
        self.dirty_jobs: set[str] = set()
        self.dirty_datasets: set[str] = set()
        self.priority_bases: dict[str, float] = {}
        """Dataset priorities last written to the store as task priority bases."""
        self._view: _DatasetView | None = None
        self._sweep_todo: list[tuple[str, str]] = []
        self._sweep_cursor: str | None = None
        self._materialize_errors: dict[str, str] = {}
        self._last_full_rollup = -FULL_ROLLUP_SECONDS

    # ------------------------------------------------------------ helpers

    def note_changed(self, dataset_id: str, job_id: str | None = None) -> None:
        """Tasks of this job/dataset changed outside the loops: roll up soon."""
        self.dirty_datasets.add(dataset_id)
        if job_id is not None and len(self.dirty_jobs) < MAX_DIRTY:
            self.dirty_jobs.add(job_id)

    async def processing_datasets(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_datasets(DatasetFilter(status=["processing"]),
                                                  ListOptions(limit=1000, after=cursor))
            rows.extend(page.rows)
            cursor = page.next_cursor
            if cursor is None:
                return rows

    async def _counts(self, datasets: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
        return {ds["dataset_id"]: await self.store.task_counts_by_status(TaskFilter(dataset_id=ds["dataset_id"]))
                for ds in datasets}

    # ------------------------------------------------------------ materialize

    async def materialize(self) -> bool:
        """Create jobs for datasets with jobs left whose backlog is low.
        ``materialize`` applies IceProd's brakes (truncated, backlog limit)
        that its service path bypasses (§6.2, §11); one dataset whose config
        cannot be materialized must not hold up the others."""
        settings = self.settings
        more = created_any = False
        for ds in await self.processing_datasets():
            dataset_id = ds["dataset_id"]
            if ds.get("truncated") or await self.store.max_job_index(dataset_id) + 1 >= ds["jobs_submitted"]:
                continue
            requested = await self.store.latest_action("materialization", dataset_id)
            if requested is not None and requested.status in ("queued", "processing"):
                continue  # an /actions/materialization request is on it: building the same jobs twice wastes CPU
            try:
                created = await materialize(self.store, settings, dataset_id, num=settings.materialize_batch)
            except MaterializeError as exc:
                if self._materialize_errors.get(dataset_id) != str(exc):
                    log.warning("cannot materialize dataset", extra={"dataset_id": dataset_id, "error": str(exc)})
                self._materialize_errors[dataset_id] = str(exc)
                continue
            self._materialize_errors.pop(dataset_id, None)
            if created:
                created_any = True
                self.note_changed(dataset_id)
                more = more or created >= settings.materialize_batch
        if created_any:
            self.wake("release")
        return more

    # ------------------------------------------------------------ release

    async def release(self) -> bool:
        """Releasable tasks → waiting, in store calls of at most
        ``RELEASE_CHUNK`` (each is one writer transaction, and claims wait
        behind it); a round that filled its chunk runs again at once."""
        limit = min(self.settings.queue_batch, RELEASE_CHUNK)
        released = await self.store.release_dependencies(limit=limit)
        if released:
            self.wake("queue")
        return released >= limit

    # ------------------------------------------------------------ queue

    async def queue(self) -> bool:
        """Dataset priorities, then waiting → queued up to the target.

        A task's priority is its dataset's base plus an offset stored when
        the task was created, so priorities cost one store call per dataset
        whose priority moved (``set_priority_bases``), never a pass over its
        tasks, and queueing reads the tasks it moves plus one index probe
        per dataset. The per-dataset task counts the dataset priorities use
        cost as much as the datasets are large (on a reader, not the writer),
        so they are recounted when the processing datasets change, else at
        most every ``DATASET_VIEW_SECONDS`` or 100 × the time the last count
        took (at most ``priority_refresh_seconds``)."""
        store, settings = self.store, self.settings
        now = time.time()
        queued = sum(c.queued for c in await store.queued_classes())
        self.metrics.queued.set(queued)
        datasets = await self.processing_datasets()
        if not datasets:
            return False
        view = await self._dataset_view(datasets, now)
        moved = {d: p for d, p in view.priorities.items()
                 if abs(p - self.priority_bases.get(d, -1.0)) > PRIORITY_TOLERANCE}
        if moved:
            await store.set_priority_bases(moved)
            self.priority_bases.update(moved)
        want = min(settings.queue_target - queued, settings.queue_batch)
        if want <= 0:
            return False
        # IceProd's fairness: datasets that already have many tasks queued,
        # relative to their priority, go last (most loaded first in the list).
        loaded = [(c.get("queued", 0) / max(view.priorities.get(d, 0.0), 1e-6), d)
                  for d, c in view.counts.items() if c.get("queued", 0) > 0]
        deprio = [d for _, d in sorted(loaded, reverse=True)]
        taken = await store.queue_tasks(want, dataset_deprio=deprio)
        self.metrics.queued.set(queued + len(taken))
        if taken:
            self.on_queued()
        await self._wake_for_paced_retry()
        return len(taken) >= want

    async def _wake_for_paced_retry(self) -> None:
        """Run the queue loop again when the next paced retry becomes eligible
        (one index probe), not only at the next interval."""
        when = await self.store.next_not_before()
        if when is None or (self._retry_timer is not None and self._retry_timer[0] <= when
                            and not self._retry_timer[1].cancelled() and self._retry_timer[0] > time.time()):
            return
        if self._retry_timer is not None:
            self._retry_timer[1].cancel()
        handle = asyncio.get_running_loop().call_later(max(when - time.time(), 0.0) + 0.01, self.wake, "queue")
        self._retry_timer = (when, handle)

    async def _dataset_view(self, datasets: list[dict[str, Any]], now: float) -> _DatasetView:
        view = self._view
        ids = [d["dataset_id"] for d in datasets]
        if view is not None and ids == [d["dataset_id"] for d in view.datasets] and now - view.at < min(
                max(DATASET_VIEW_SECONDS, COUNT_COST_FACTOR * view.cost), self.settings.priority_refresh_seconds):
            return view
        started = time.monotonic()
        counts = await self._counts(datasets)
        cost = time.monotonic() - started
        view = self._view = _DatasetView(datasets, counts, await self._dataset_priorities(datasets, counts, now),
                                         now, cost)
        for gone in set(self.priority_bases) - set(ids):
            del self.priority_bases[gone]
        return view

    async def _dataset_priorities(self, datasets: list[dict[str, Any]], counts: dict[str, dict[str, int]],
                                  now: float) -> dict[str, float]:
        self.fair_share.observe(await self.store.list_usage(), now)
        users = {u.username: u.priority for u in await self.store.list_users()}
        groups = {g.name: g.priority for g in await self.store.list_groups()}
        inputs = [DatasetInputs(dataset_id=ds["dataset_id"], priority=float(ds.get("priority", 0.5)),
                                username=ds.get("username", ""), group=ds.get("group", ""),
                                jobs_submitted=int(ds.get("jobs_submitted", 0)),
                                age_days=_age_days(ds.get("start_date", ""), now),
                                active_tasks=sum(counts[ds["dataset_id"]].get(s, 0) for s in ACTIVE_STATUSES))
                  for ds in datasets]
        owners = {i.dataset_id: (i.username, i.group) for i in inputs}
        return dataset_priorities(inputs, user_priorities=users, group_priorities=groups,
                                  fair_share=self.fair_share.factors(owners, now))

    # ------------------------------------------------------------ reap

    async def reap(self) -> bool:
        """Leases that ran out and pilots that went silent: their tasks go back
        to waiting as infrastructure failures (their own budget, §3.4)."""
        settings = self.settings
        limit = settings.queue_batch
        expired = await self.store.expire_leases(policy=retry_policy(settings), limit=limit)
        silent = 3 * settings.heartbeat_interval  # at most the lease
        lost = await self.store.mark_lost_pilots(time.time() - silent)
        for pilot_id in lost:
            pilot = await self.store.get_pilot(pilot_id)
            if pilot is not None and pilot.tasks:
                await release_pilot_tasks(self.store, settings, list(pilot.tasks), pilot_id,
                                          f"pilot lost: no heartbeat for {silent:g} s")
        if expired:
            log.info("leases expired", extra={"tasks": len(expired)})
            for chunk in _chunks(expired, 1000):
                page = await self.store.list_tasks(TaskFilter(task_ids=chunk),
                                                   ListOptions(keys=["job_id", "dataset_id"]))
                for row in page.rows:
                    self.note_changed(row["dataset_id"], row["job_id"])
        if lost:
            log.info("pilots lost", extra={"pilots": len(lost)})
        if expired or lost:
            self.wake("rollup")
            self.wake("queue")
        return len(expired) >= limit

    # ------------------------------------------------------------ roll-up

    async def rollup(self) -> bool:
        """Job and dataset status from their tasks. Reports roll up at once in
        the API; this catches everything else (reaped leases, a server killed
        between a report and its roll-up) with a bounded sweep per round.

        Counting a dataset's jobs costs as much as the dataset is large and
        happens in the store's writer, so a dataset is rolled up only when
        one of its jobs changed or was noted, and all of them on the first round
        after a start and every ``FULL_ROLLUP_SECONDS``."""
        batch = self.settings.rollup_sweep_batch
        jobs = [self.dirty_jobs.pop() for _ in range(min(batch, len(self.dirty_jobs)))]
        datasets = set(self.dirty_datasets)
        self.dirty_datasets.clear()
        processing = [ds["dataset_id"] for ds in await self.processing_datasets()]
        jobs.extend(await self._sweep_page(processing, batch))
        for chunk in _chunks(list(dict.fromkeys(jobs)), ROLLUP_CHUNK):
            changes = await self.store.rollup_jobs(chunk)
            if changes:
                datasets.update(await self._after_job_changes(changes))
        now = time.monotonic()
        if now - self._last_full_rollup >= FULL_ROLLUP_SECONDS:
            self._last_full_rollup = now
            datasets.update(processing)
        for dataset_id in datasets:
            await self.store.rollup_dataset(dataset_id)
        return bool(self.dirty_jobs)

    async def _after_job_changes(self, changes: dict[str, str]) -> set[str]:
        """Scratch cleanup for jobs that completed; the datasets touched."""
        page = await self.store.list_jobs(JobFilter(job_ids=list(changes)),
                                          ListOptions(keys=["dataset_id", "job_index"]))
        for row in page.rows:
            if changes.get(row["job_id"]) == "complete":
                await cleanup_job_scratch(self.store, self.settings, row["dataset_id"], row["job_index"])
        return {row["dataset_id"] for row in page.rows}

    async def _sweep_page(self, processing: list[str], batch: int) -> list[str]:
        """The next ``batch`` unfinished jobs of processing datasets, walking
        one (dataset, status) after the other and starting over when all
        were seen. One status at a time: each page is then one range of the
        jobs' (dataset_id, status) index, in ``seq`` order (three statuses
        at once would make the store merge and sort them for every page)."""
        if not self._sweep_todo:
            self._sweep_todo = [(d, s) for d in processing for s in SWEEP_STATUSES]
            self._sweep_cursor = None
        while self._sweep_todo:
            dataset_id, status = self._sweep_todo[0]
            page = await self.store.list_jobs(JobFilter(dataset_id=dataset_id, status=[status]),
                                              ListOptions(keys=["job_id"], limit=batch, after=self._sweep_cursor))
            self._sweep_cursor = page.next_cursor
            if page.next_cursor is None:
                self._sweep_todo.pop(0)
            if page.rows:
                return [row["job_id"] for row in page.rows]
        return []

    # ------------------------------------------------------------ actions cleanup

    async def cleanup_actions(self) -> bool:
        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=ACTIONS_KEPT_SECONDS)
        removed = await self.store.delete_actions_before(cutoff.strftime(TIME_FORMAT))
        if removed:
            log.info("old action messages removed", extra={"count": removed})
        return False
