"""Roll-up right after a status change made by a user, an action or a pilot's report.

DESIGN §3.4: job and dataset status follow their tasks at once, not from a
late cron as in IceProd. The store derives the statuses; this helper decides
WHICH jobs to derive after a bulk change and reopens what a hard reset
reopened (``complete`` is final for the roll-up itself).
"""
from __future__ import annotations

import logging
from typing import Iterable

from server.scratch.files import cleanup_job_scratch
from server.settings import Settings
from server.store import Store, Task

log = logging.getLogger("frazil.server.rollup")

CHUNK = 5000


async def roll_up(store: Store, dataset_id: str, job_ids: Iterable[str] | None = None, *,
                  reopen: bool = False) -> None:
    """Derive job and dataset status at once after tasks changed (DESIGN §3.4),
    instead of waiting for a cron as IceProd does. ``job_ids`` None = every
    job of the dataset. ``reopen`` (after a hard reset): ``complete`` is final
    for the roll-up, so the touched jobs and a complete dataset are first put
    back to processing, then derived from their tasks again."""
    if job_ids is None:
        summary = await store.job_status_summary(dataset_id)
        job_ids = [j for ids in summary.values() for j in ids]
    ids = list(dict.fromkeys(job_ids))
    for start in range(0, len(ids), CHUNK):
        if reopen:
            await store.bulk_job_status(dataset_id, "processing", ids[start:start + CHUNK], force=True)
        await store.rollup_jobs(ids[start:start + CHUNK])
    if reopen:
        dataset = await store.get_dataset(dataset_id)
        if dataset is not None and dataset.status == "complete":
            await store.set_dataset_status(dataset_id, "processing", force=True)
    await store.rollup_dataset(dataset_id)


async def roll_up_task(store: Store, settings: Settings, task: Task) -> dict[str, str]:
    """After a report on ``task``: its job's status at once; the dataset's only
    when a job changed (its status depends on job statuses alone). The store's
    dataset roll-up stops at the first processing job it finds, so this costs
    one write, not a count of a million-job dataset. A job that just completed
    has its scratch files removed."""
    changes = await store.rollup_job_and_dataset(task.job_id, task.dataset_id)
    if changes.get(task.job_id) == "complete":
        try:
            await cleanup_job_scratch(store, settings, task.dataset_id, task.job_index)
        except OSError:  # a leftover scratch file must not turn a good report into an error
            log.exception("scratch cleanup of dataset %s job %s failed", task.dataset_id, task.job_index)
    return changes
