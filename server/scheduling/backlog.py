"""How many tasks a dataset may still have created now (issue 11 item 2).

Materialization is bounded while it creates, not only when it starts: a
budget of tasks is taken at the start of each call from three limits and
spent chunk by chunk, so one request for a million jobs creates at most what
the limits leave and the rest waits for tasks to start:

* ``backlog_limit``: tasks materialized but not started (idle, waiting,
  queued) in the dataset;
* ``user_backlog_limit``: the same over all the user's processing and
  suspended datasets;
* storage: nothing is created while the store's file system has less than
  ``min_free_disk_gb`` free or its write log (SQLite's WAL) is past its
  limit (checkpoints behind); checked again before every chunk.

:func:`materialization_state` says the same to people: GET /datasets/{id},
the dataset page and the admin dashboard show why a dataset's jobs are not
all created.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.settings import Settings
from server.store import Dataset, DatasetFilter, ListOptions, Store, TaskFilter

UNSTARTED = ("idle", "waiting", "queued")
"""Task statuses counted against the backlog limits (created, not running)."""
USER_DATASETS = ("processing", "suspended")
"""A user's datasets whose tasks count against ``user_backlog_limit``."""
GB = 1e9


@dataclass
class Budget:
    tasks: int
    """Tasks that may be created now (>= 0)."""
    held: str = ""
    """Why it is 0 (or why creation will stop), for people; empty when nothing holds it."""


async def unstarted(store: Store, dataset_id: str) -> int:
    counts = await store.task_counts_by_status(TaskFilter(dataset_id=dataset_id, status=list(UNSTARTED)))
    return sum(counts.get(s, 0) for s in UNSTARTED)


async def user_unstarted(store: Store, username: str) -> int:
    total, cursor = 0, None
    while True:
        page = await store.list_datasets(DatasetFilter(status=list(USER_DATASETS), users=[username]),
                                         ListOptions(keys=["dataset_id"], limit=1000, after=cursor))
        for row in page.rows:
            total += await unstarted(store, row["dataset_id"])
        cursor = page.next_cursor
        if cursor is None:
            return total


async def storage_hold(store: Store, settings: Settings) -> str:
    """Why the store's storage stops job creation now; empty when it does not."""
    pressure = await store.storage_pressure()
    if pressure.free_bytes is not None and pressure.free_bytes < settings.min_free_disk_gb * GB:
        return (f"the store's disk has {pressure.free_bytes / GB:.2f} GB free, less than min_free_disk_gb "
                f"({settings.min_free_disk_gb:g} GB)")
    if pressure.log_bytes is not None and pressure.log_limit and pressure.log_bytes > pressure.log_limit:
        return (f"the store's write-ahead log is {pressure.log_bytes / 2**20:.0f} MiB, past its limit "
                f"({pressure.log_limit / 2**20:.0f} MiB): checkpoints are behind")
    return ""


async def budget(store: Store, settings: Settings, dataset: Dataset) -> Budget:
    """The tasks ``dataset`` may have created now, and what limits it."""
    held = await storage_hold(store, settings)
    if held:
        return Budget(0, f"job creation stopped: {held}")
    mine = await unstarted(store, dataset.dataset_id)
    left = settings.backlog_limit - mine
    reason = f"backlog_limit reached: {mine} tasks of this dataset not started (limit {settings.backlog_limit})"
    if left > 0:
        theirs = await user_unstarted(store, dataset.username)
        user_left = settings.user_backlog_limit - theirs
        if user_left < left:
            left = user_left
            reason = (f"user_backlog_limit reached: {theirs} tasks of {dataset.username}'s datasets not started "
                      f"(limit {settings.user_backlog_limit})")
    return Budget(max(left, 0), reason)


async def materialization_state(store: Store, settings: Settings, dataset: Dataset) -> dict[str, Any]:
    """``{"jobs_materialized": n}`` plus ``"materialization_held": reason`` while
    jobs remain to be created and a limit keeps them back (the API and pages)."""
    created = await store.max_job_index(dataset.dataset_id) + 1
    state: dict[str, Any] = {"jobs_materialized": created}
    if created < dataset.jobs_submitted and not dataset.truncated:
        left = await budget(store, settings, dataset)
        if left.tasks < max(dataset.tasks_per_job, 1):
            state["materialization_held"] = left.held
    return state
