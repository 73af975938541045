"""The work of each background loop, one method per loop (DESIGN.md §1):
materialize → release → queue → reap → roll up → actions cleanup.

Each method does one bounded round and returns True when it stopped at a
batch limit (so the runner goes again at once instead of sleeping). None of
them does a store call per task: priorities are written in bulk, counts come
from the store's indexes, and the roll-up works on batches of jobs.
"""
from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from server.metrics import ServerMetrics
from server.scheduling.fairshare import FairShare
from server.scheduling.materialize import MaterializeError, materialize
from server.scheduling.pilots import release_pilot_tasks, retry_policy
from server.scheduling.priority import DatasetInputs, dataset_priorities, task_priority
from server.scratch.files import cleanup_job_scratch
from server.settings import Settings
from server.store import DatasetFilter, JobFilter, ListOptions, Store, TaskFilter
from server.store.records import TIME_FORMAT

log = logging.getLogger("frazil.server.scheduling")

ACTIVE_STATUSES = ("idle", "waiting", "queued", "processing")
"""Tasks that count towards a dataset's share of the backlog (reference §6.3)."""
PAGE = 10_000
ACTIONS_KEPT_SECONDS = 86_400.0
MAX_DIRTY = 100_000
"""Jobs remembered for an early roll-up; beyond that the sweep catches them."""
PRIORITY_TOLERANCE = 0.005
"""Priority changes smaller than this are not written (ordering barely moves)."""
PRIORITY_MIN_INTERVAL = 10.0
"""Newly released tasks of a dataset get their priority within this many seconds."""
PRIORITY_WRITE_BATCH = 2_000
PRIORITY_PAGE = 1_000
"""Waiting tasks read per store call: each page is converted in the event
loop, so pages stay small enough not to delay requests."""
ROLLUP_CHUNK = 250
"""Jobs per roll-up store call: short writer transactions, so claims interleave."""
FULL_ROLLUP_SECONDS = 600.0
"""Every processing dataset is rolled up on the first round and then this
often; in between only datasets whose jobs changed (a full pass counts every
job of every dataset, in the store's writer)."""
DATASET_VIEW_SECONDS = 30.0


@dataclass
class _DatasetView:
    """Processing datasets with their task counts and priorities at ``at``."""

    datasets: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]
    priorities: dict[str, float]
    at: float


@dataclass
class _PriorityState:
    """What a dataset's waiting-task priorities were last computed from."""

    priority: float
    waiting: int
    at: float


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

    def __init__(self, store: Store, settings: Settings, wake: Callable[[str], None], metrics: ServerMetrics) -> None:
        self.store = store
        self.settings = settings
        self.wake = wake
        self.metrics = metrics
        self.fair_share = FairShare(self.settings.usage_half_life_hours, self.settings.fair_share_weight)
        self.dirty_jobs: set[str] = set()
        self.dirty_datasets: set[str] = set()
        self._priorities: dict[str, _PriorityState] = {}
        self._view: _DatasetView | None = None
        self._sweep_datasets: list[str] = []
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
        released = await self.store.release_dependencies(limit=self.settings.queue_batch)
        if released:
            self.wake("queue")
        return released >= self.settings.queue_batch

    # ------------------------------------------------------------ queue

    async def queue(self) -> bool:
        """Priorities for waiting tasks, then waiting → queued up to the target.

        Only waiting tasks need priorities, so a round without any costs a
        few index lookups. Per-dataset counts of every active status cost as much as
        the dataset is large, so the dataset-level view (priorities, queued
        load) is recomputed when the processing datasets change, else at most
        every ``DATASET_VIEW_SECONDS``; the
        cheap per-dataset waiting counts are read every round."""
        store, settings = self.store, self.settings
        now = time.time()
        queued = sum(c.queued for c in await store.queued_classes())
        self.metrics.queued.set(queued)
        datasets = await self.processing_datasets()
        # (dataset, status) is an index prefix: each count is as cheap as the
        # dataset has waiting tasks, unlike one count over all datasets
        in_waiting = {ds["dataset_id"]: (await store.task_counts_by_status(
            TaskFilter(dataset_id=ds["dataset_id"], status=["waiting"]))).get("waiting", 0) for ds in datasets}
        waiting = sum(in_waiting.values())
        if not waiting:
            return False
        view = self._view
        if view is None or now - view.at >= DATASET_VIEW_SECONDS or \
                [d["dataset_id"] for d in datasets] != [d["dataset_id"] for d in view.datasets]:
            counts = await self._counts(datasets)
            view = self._view = _DatasetView(datasets, counts, await self._dataset_priorities(datasets, counts, now),
                                             now)
            for gone in set(self._priorities) - set(view.priorities):
                del self._priorities[gone]
        for ds in datasets:
            dataset_id = ds["dataset_id"]
            await self._refresh_task_priorities(ds, view.priorities[dataset_id], in_waiting[dataset_id], now)

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
        return len(taken) >= want and len(taken) < waiting

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

    async def _refresh_task_priorities(self, ds: dict[str, Any], prio: float, waiting: int, now: float) -> None:
        """Keep the dataset's waiting-task priorities right without reading
        them all every round (at ~10 µs of Python per row, a 250,000-task
        backlog would cost seconds):

        * newly released tasks (materialized with priority 0) are found by
          reading the waiting tasks lowest priority first, page by page, until
          a page needs no change (at most every ``PRIORITY_MIN_INTERVAL``);
        * all waiting tasks are recomputed when the dataset priority moved by
          more than ``PRIORITY_TOLERANCE`` or every ``priority_refresh_seconds``.

        Only values off by more than the tolerance are written, in short
        batches, so the store's writer is never held long from the claims."""
        dataset_id = ds["dataset_id"]
        state = self._priorities.get(dataset_id)
        full = False
        if state is not None:
            age = now - state.at
            full = abs(state.priority - prio) > PRIORITY_TOLERANCE or age >= self.settings.priority_refresh_seconds
            if not full and not (waiting > state.waiting and age >= PRIORITY_MIN_INTERVAL):
                state.waiting = min(state.waiting, waiting)  # queueing lowers it; a later release counts as new
                return
        if state is None or full:
            self._priorities[dataset_id] = _PriorityState(prio, waiting, now)
        else:  # only new tasks: the dataset priority the others were computed with stays the reference
            state.waiting, state.at = waiting, now
            prio = state.priority
        if waiting:
            await self._write_task_priorities(ds, prio, full)

    async def _write_task_priorities(self, ds: dict[str, Any], prio: float, full: bool) -> None:
        jobs_submitted = int(ds.get("jobs_submitted", 0))
        tasks_per_job = int(ds.get("tasks_per_job", 0))
        opts = ListOptions(keys=["job_index", "task_index", "priority"], limit=PRIORITY_PAGE,
                           sort=() if full else (("priority", 1),))
        while True:
            page = await self.store.list_tasks(TaskFilter(dataset_id=ds["dataset_id"], status=["waiting"]), opts)
            changed: list[tuple[str, float]] = []
            for row in page.rows:
                new = task_priority(prio, task_index=row.get("task_index", 0), job_index=row.get("job_index", 0),
                                    tasks_per_job=tasks_per_job, jobs_submitted=jobs_submitted)
                if abs(new - row.get("priority", 0.0)) > PRIORITY_TOLERANCE:
                    changed.append((row["task_id"], new))
            for chunk in _chunks(changed, PRIORITY_WRITE_BATCH):
                await self.store.set_priorities(chunk)
            if page.next_cursor is None:
                return
            # lowest first: past the never-prioritised tasks (priority 0) and a
            # page needing nothing, the rest was computed before
            if not full and not changed and page.rows and page.rows[-1].get("priority", 0.0) > 0.0:
                return
            opts = ListOptions(keys=opts.keys, limit=PRIORITY_PAGE, after=page.next_cursor, sort=opts.sort)

    # ------------------------------------------------------------ reap

    async def reap(self) -> bool:
        """Leases that ran out and pilots that went silent: their tasks go back
        to waiting as infrastructure failures (their own budget, §3.4)."""
        settings = self.settings
        limit = settings.queue_batch
        expired = await self.store.expire_leases(policy=retry_policy(settings), limit=limit)
        lost = await self.store.mark_lost_pilots(time.time() - 3 * settings.heartbeat_seconds)
        for pilot_id in lost:
            pilot = await self.store.get_pilot(pilot_id)
            if pilot is not None and pilot.tasks:
                await release_pilot_tasks(self.store, settings, list(pilot.tasks), pilot_id,
                                          f"pilot lost: no heartbeat for {3 * settings.heartbeat_seconds:g} s")
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
        one dataset after the other and starting over when all were seen."""
        if not self._sweep_datasets:
            self._sweep_datasets = list(processing)
            self._sweep_cursor = None
        while self._sweep_datasets:
            dataset_id = self._sweep_datasets[0]
            page = await self.store.list_jobs(
                JobFilter(dataset_id=dataset_id, status=["processing", "errors", "suspended"]),
                ListOptions(keys=["job_id"], limit=batch, after=self._sweep_cursor))
            self._sweep_cursor = page.next_cursor
            if page.next_cursor is None:
                self._sweep_datasets.pop(0)
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
