"""Jobs and tasks: creation, listing, status, requirements, roll-up, stats.

Jobs and tasks as rows: bulk creation, listings and counts, guarded status
changes, requirements and priorities, the job/dataset roll-up, attempts,
IceProd task_stats documents and output provenance.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc
from typing import Any, Sequence

from ..query import JobFilter, ListOptions, Page, TaskFilter
from ..records import Attempt, Job, NewJob, ProvenanceRecord, StoragePressure, Task, TaskStat


class JobsRole(abc.ABC):
    """The jobs-and-tasks part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def create_jobs(self, dataset_id: str, jobs: Sequence[NewJob],
                          config_version: int | None = None) -> int:
        """Create jobs with all their tasks in batches (never a round trip per
        task). Each job appears with all its tasks or not at all, also after a
        crash. Jobs whose job_id (or dataset+job_index) already exists are
        skipped with their tasks, so a retried call is idempotent. Tasks get
        their ``resource_class`` and dependency bookkeeping here. Returns the
        number of jobs created. NotFoundError if the dataset is missing."""

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    async def list_jobs(self, filter: JobFilter, opts: ListOptions = ListOptions()) -> Page:
        """Jobs in creation order, projected, paginated."""

    @abc.abstractmethod
    async def max_job_index(self, dataset_id: str) -> int:
        """Highest job_index of the dataset, -1 when it has no jobs (materializer)."""

    @abc.abstractmethod
    async def storage_pressure(self) -> StoragePressure:
        """Free space and write-log size of the store's storage (materializer:
        creating jobs stops while either is past its limit); fields the
        backend cannot know are None. Reads no rows."""

    @abc.abstractmethod
    async def job_counts_by_status(self, dataset_id: str) -> dict[str, int]:
        """{status: count} (statuses with zero jobs omitted)."""

    @abc.abstractmethod
    async def job_status_summary(self, dataset_id: str) -> dict[str, list[str]]:
        """{status: [job_id, ...]}."""

    @abc.abstractmethod
    async def set_job_status(self, job_id: str, status: str, *, force: bool = False) -> bool:
        """Guarded transition of one job; True iff it changed."""

    @abc.abstractmethod
    async def bulk_job_status(self, dataset_id: str, status: str, job_ids: Sequence[str] | None = None,
                              *, force: bool = False) -> int:
        """Move the given jobs (None = all of the dataset) that are in an allowed
        previous status (any status with ``force``) to ``status``; return how
        many changed. Suspend/reset/hard reset of reference §4.3."""

    # ------------------------------------------------------------ tasks

    @abc.abstractmethod
    async def get_task(self, task_id: str) -> Task | None: ...

    @abc.abstractmethod
    async def list_tasks(self, filter: TaskFilter, opts: ListOptions = ListOptions()) -> Page:
        """Tasks matching the filter, sorted by ``opts.sort`` (fields of
        ``query.TASK_SORT_FIELDS``) then creation order, projected, paginated."""

    @abc.abstractmethod
    async def task_counts_by_status(self, filter: TaskFilter = TaskFilter()) -> dict[str, int]:
        """{status: count} for the filter (dataset_id, status, gpu are the useful
        fields); zero counts omitted. Index-driven."""

    @abc.abstractmethod
    async def task_counts_by_name_status(self, dataset_id: str) -> dict[str, dict[str, int]]:
        """{task name: {status: count}}, names ordered by task_index."""

    @abc.abstractmethod
    async def task_status_summary(self, dataset_id: str) -> dict[str, list[str]]:
        """{status: [task_id, ...]}."""

    @abc.abstractmethod
    async def set_task_status(self, task_id: str, status: str, *, instance_id: str | None = None,
                              force: bool = False) -> bool:
        """Guarded transition of one task; with ``instance_id`` it applies only to
        that claim. Leaving ``processing`` this way clears the claim (instance_id,
        pilot, lease) and closes the open attempt as ``cancelled`` so a late
        pilot report is stale. True iff it changed."""

    @abc.abstractmethod
    async def bulk_task_status(self, status: str, *, dataset_id: str | None = None,
                               task_ids: Sequence[str] | None = None,
                               job_ids: Sequence[str] | None = None, force: bool = False,
                               reset_failures: bool = False) -> int:
        """Move matching tasks (dataset and/or ids and/or jobs; at least one
        given) from allowed previous statuses (any with ``force``) to
        ``status``, clearing claims as in :meth:`set_task_status`.
        ``reset_failures`` (hard reset) also zeroes the failure counters and
        ``site``. bulk_suspend = ("suspended"), bulk_reset = ("idle"),
        bulk_hard_reset = ("idle", force, reset_failures). Returns the count."""

    @abc.abstractmethod
    async def update_requirements(self, dataset_id: str, task_name: str, requirements: dict[str, Any],
                                  *, replace: bool = False) -> int:
        """Change requirements of all tasks named ``task_name``. PATCH
        (replace=False): set the given keys. Replace: numeric keys only grow
        (max of old and new), ``os`` set (or removed when absent), other absent
        keys removed. Resource classes are recomputed. Returns tasks changed."""

    @abc.abstractmethod
    async def set_priorities(self, priorities: Sequence[tuple[str, float]]) -> int:
        """Bulk-set task priorities by hand (clamped to [0, 1]); returns tasks
        found. A task not yet queued keeps the value relative to its
        dataset's base (its offset becomes ``priority - base``)."""

    @abc.abstractmethod
    async def task_stats_by_name(self, dataset_id: str) -> dict[str, dict[str, float]]:
        """Per task name over complete tasks: count, gpu (sum of
        requirements.gpu), total_hrs, total_err_hrs, avg_hrs, stddev_hrs,
        min_hrs, max_hrs, efficiency = total / (total + err)."""

    # ------------------------------------------------------------ roll-up

    @abc.abstractmethod
    async def rollup_jobs(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Recompute each job's status from its task status counts
        (``common.states.job_status_from_tasks``); apply it where it differs
        and the transition is allowed. Returns {job_id: new status} of changes."""

    async def rollup_job(self, job_id: str) -> str | None:
        """One job; the new status if it changed."""
        return (await self.rollup_jobs([job_id])).get(job_id)

    @abc.abstractmethod
    async def rollup_dataset(self, dataset_id: str) -> str | None:
        """Recompute the dataset status from job counts
        (``common.states.dataset_status_from_jobs``; all materialized = truncated
        or jobs == jobs_submitted; ``always_active`` datasets are left alone).
        Returns the new status if it changed."""

    async def rollup_job_and_dataset(self, job_id: str, dataset_id: str) -> dict[str, str]:
        """After a report: :meth:`rollup_jobs` of the job, then, only when the
        job changed, :meth:`rollup_dataset`; the job's change as rollup_jobs
        answers it. A backend may do both in one write (SQLite does: it is on
        the claim path)."""
        changes = await self.rollup_jobs([job_id])
        if changes:
            await self.rollup_dataset(dataset_id)
        return changes

    # ------------------------------------------------------------ attempts, task stats, provenance

    @abc.abstractmethod
    async def get_attempts(self, task_id: str) -> list[Attempt]:
        """All attempts of a task, oldest first."""

    @abc.abstractmethod
    async def add_task_stat(self, task_id: str, dataset_id: str, stats: dict[str, Any]) -> str:
        """Store an IceProd ``task_stats`` body; return its task_stat_id."""

    @abc.abstractmethod
    async def list_task_stats(self, *, task_id: str | None = None, dataset_id: str | None = None,
                              last: bool = False, opts: ListOptions = ListOptions()) -> Page:
        """Stats of a task or dataset in creation order (``last``: only the newest
        per task), projected and paginated."""

    @abc.abstractmethod
    async def get_task_stat(self, task_stat_id: str) -> TaskStat | None: ...

    @abc.abstractmethod
    async def provenance(self, url: str) -> list[ProvenanceRecord]:
        """Every completed attempt that reported ``url`` as an output, oldest first."""
