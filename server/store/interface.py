"""The store contract: every piece of server state goes through this class.

Handlers and background loops speak to a :class:`Store` in domain terms and
never see SQL or Mongo. Every method is a coroutine and every mutating method
is atomic (one transaction or one atomic document update): a crash leaves
either the whole effect or none of it. Both backends pass the same contract
suite (``tests/store/``); where this docstring and a backend disagree, the
backend is wrong.

Conventions:
* ids are ``uuid1().hex`` strings; timestamps in documents are IceProd time
  strings (:func:`records.nowstr`); leases and ``last_seen`` are epoch seconds.
* "guarded" status changes apply only from the statuses that
  ``common.states.previous_statuses(kind, new)`` allows (``force=True``
  bypasses the machine, as IceProd's hard reset and bulk_status routes do)
  and return whether anything changed.
* Reports carry the ``instance_id`` the claim handed out (fencing): a report
  with any other id changes nothing and says ``stale``.
"""
from __future__ import annotations

import abc
from typing import Any, Sequence

from .query import DatasetFilter, JobFilter, ListOptions, LogFilter, Page, TaskFilter
from .records import (
    ActionMessage, Attempt, AttemptResult, ClaimedTask, ClaimRequest, ConfigVersion, Dataset, DatasetFile,
    DatasetRights, Group, HeartbeatReply, Job, Log, NewDataset, NewJob, NewLog, NewPilot, Pilot,
    ProvenanceRecord, QueueClass, ReportOutcome, RetryPolicy, ScratchFile, Task, TaskStat, Usage,
    User,
)


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NotFoundError(StoreError, LookupError):
    """The named dataset/job/task/... does not exist (REST: 404)."""


class ConflictError(StoreError):
    """A unique name or id is already taken (REST: 409)."""


class InvalidArgumentError(StoreError, ValueError):
    """A value the store refuses (bad status, lowering jobs_submitted, ...): 400."""


class SchemaVersionError(StoreError):
    """The database was written by a newer frazil (or is not a frazil store)."""


class Store(abc.ABC):
    """Abstract store. Obtain one with ``server.store.open_store(url)``."""

    backend: str = ""
    """"sqlite" or "mongodb" (for logs and benchmarks)."""

    # ------------------------------------------------------------ lifecycle

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release connections/threads. Idempotent."""

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ datasets

    @abc.abstractmethod
    async def create_dataset(self, new: NewDataset) -> Dataset:
        """Create a dataset with the next sequential ``dataset`` number (atomic
        counter: concurrent creates get distinct consecutive numbers), status
        ``new.status``, ``start_date`` now, ``truncated`` false. ConflictError
        if ``new.dataset_id`` exists."""

    @abc.abstractmethod
    async def get_dataset(self, dataset_id: str) -> Dataset | None:
        """The dataset or None."""

    @abc.abstractmethod
    async def get_dataset_by_number(self, number: int) -> Dataset | None:
        """The dataset whose ``dataset`` number is ``number``, or None."""

    @abc.abstractmethod
    async def list_datasets(self, filter: DatasetFilter = DatasetFilter(),
                            opts: ListOptions = ListOptions()) -> Page:
        """Datasets matching every given filter field (lists = any of), oldest
        first (by number), projected to ``opts.keys``, paginated."""

    @abc.abstractmethod
    async def update_dataset(self, dataset_id: str, *, description: str | None = None,
                             priority: float | None = None, debug: bool | None = None,
                             always_active: bool | None = None) -> bool:
        """Set the given plain fields (None = leave). False if no such dataset."""

    @abc.abstractmethod
    async def set_jobs_submitted(self, dataset_id: str, jobs_submitted: int) -> Dataset:
        """Raise ``jobs_submitted`` and set ``tasks_submitted = jobs * tasks_per_job``
        in one step. InvalidArgumentError if it would decrease or the dataset is
        ``jobs_immutable``; NotFoundError if missing."""

    @abc.abstractmethod
    async def truncate_dataset(self, dataset_id: str) -> bool:
        """Mark ``truncated`` (no more jobs are materialized). InvalidArgumentError
        if the dataset is complete; False if missing."""

    @abc.abstractmethod
    async def set_dataset_status(self, dataset_id: str, status: str, *, force: bool = False) -> bool:
        """Guarded transition; ``status_changed`` updated. True iff it changed.
        InvalidArgumentError for an unknown status."""

    @abc.abstractmethod
    async def dataset_status_summary(self, filter: DatasetFilter = DatasetFilter()) -> dict[str, list[str]]:
        """{status: [dataset_id, ...]} for the matching datasets."""

    # ------------------------------------------------------------ config versions

    @abc.abstractmethod
    async def add_config_version(self, dataset_id: str, config: dict[str, Any], author: str,
                                 comment: str = "") -> int:
        """Append an immutable version (1, 2, ...; concurrent adds get distinct
        numbers) with created time and the sha256 of canonical JSON; return
        its number. NotFoundError if the dataset does not exist."""

    @abc.abstractmethod
    async def get_config(self, dataset_id: str, version: int | None = None) -> ConfigVersion | None:
        """That version, or the newest when ``version`` is None; None if absent."""

    @abc.abstractmethod
    async def list_config_versions(self, dataset_id: str) -> list[ConfigVersion]:
        """All versions, oldest first (with their configs)."""

    # ------------------------------------------------------------ jobs

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
        """Bulk-set task priorities (scheduler output); returns tasks found."""

    @abc.abstractmethod
    async def task_stats_by_name(self, dataset_id: str) -> dict[str, dict[str, float]]:
        """Per task name over complete tasks: count, gpu (sum of
        requirements.gpu), total_hrs, total_err_hrs, avg_hrs, stddev_hrs,
        min_hrs, max_hrs, efficiency = total / (total + err)."""

    # ------------------------------------------------------------ scheduling

    @abc.abstractmethod
    async def release_dependencies(self, limit: int = 10_000, dataset_id: str | None = None) -> int:
        """Move up to ``limit`` idle tasks of ``processing`` datasets whose
        dependencies (any dataset) are all complete to waiting; return how many.
        Tasks of suspended or finished datasets stay idle. Index-driven: its cost
        follows the number of releasable tasks, not of idle ones."""

    @abc.abstractmethod
    async def queue_tasks(self, num: int, *, dataset_deprio: Sequence[str] = (),
                          dataset_id: str | None = None) -> list[str]:
        """Move up to ``num`` waiting tasks to queued, highest priority first
        (ties: creation order). Tasks of ``dataset_deprio`` datasets come last;
        among those, the last-listed dataset is taken first (the list is
        most-loaded first, as IceProd's grid sends it). Returns the task ids."""

    @abc.abstractmethod
    async def queued_classes(self) -> list[QueueClass]:
        """Queued-task counts per resource class (provisioning demand)."""

    @abc.abstractmethod
    async def claim(self, request: ClaimRequest) -> ClaimedTask | None:
        """THE hot path. Atomically move the highest-priority queued task that
        fits (cpu, gpu, memory, disk <= free; time <= remaining hours; task os
        empty or intersecting; task site empty or equal) to processing with a
        new instance_id, the pilot, ``lease_expires = now + lease_seconds`` and
        a new attempt record (attempt number, pilot, host, site, start). No
        task is ever handed out twice. Tasks needing a GPU go only to pilots
        with enough free GPUs, and a pilot with free GPUs gets a GPU task if
        one fits before any CPU task. Ties: priority desc, creation order.
        Cost independent of the number of queued tasks. None if nothing fits."""

    @abc.abstractmethod
    async def complete(self, task_id: str, instance_id: str, result: AttemptResult) -> ReportOutcome:
        """Fenced: the processing task claimed under this instance_id -> complete,
        ``walltime = time_used/3600``, claim cleared, attempt closed with the
        result (outputs recorded for provenance), dependents become releasable."""

    @abc.abstractmethod
    async def reset(self, task_id: str, instance_id: str, result: AttemptResult,
                    policy: RetryPolicy | None = None) -> ReportOutcome:
        """Fenced non-physics (or infra) failure: ``failures`` +1 and the
        class counter +1 (infra: ``failures_infra``, else
        ``failures_nonphysics``), walltime_err += hours, requirements escalated
        from the measured peaks (never shrink; old->new kept in the attempt),
        task -> waiting; but -> failed when the class budget is exceeded (the
        ``max_retries+1``-th non-physics failure, or more than
        ``max_infra_failures``). A physics class is treated as :meth:`fail`."""

    @abc.abstractmethod
    async def fail(self, task_id: str, instance_id: str, result: AttemptResult,
                   policy: RetryPolicy | None = None) -> ReportOutcome:
        """Fenced physics failure: task -> failed, ``failures`` +1, escalation
        applied as in reset (IceProd does too), attempt closed."""

    @abc.abstractmethod
    async def renew_leases(self, pilot_id: str, task_ids: Sequence[str], lease_seconds: float) -> list[str]:
        """Extend the leases of the given processing tasks held by this pilot;
        return the ids still held (the pilot should abandon the others)."""

    @abc.abstractmethod
    async def expire_leases(self, now: float | None = None, policy: RetryPolicy | None = None,
                            limit: int = 10_000) -> list[str]:
        """Processing tasks whose lease ended before ``now`` -> waiting (or
        failed past the infra budget) as an infrastructure failure
        ``pilot-lost``; attempt closed with status ``lost``. Returns their ids."""

    @abc.abstractmethod
    async def get_attempts(self, task_id: str) -> list[Attempt]:
        """All attempts of a task, oldest first."""

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

    # ------------------------------------------------------------ task stats, provenance

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

    # ------------------------------------------------------------ logs

    @abc.abstractmethod
    async def add_log(self, log: NewLog) -> str:
        """Store a log; over 1 MB it is kept out of the hot table in chunks and
        reassembled on read. Returns the log_id."""

    @abc.abstractmethod
    async def append_log(self, log_id: str, chunk: str) -> int:
        """Append to a running log (streaming); returns the new size in
        characters. NotFoundError if the log does not exist."""

    @abc.abstractmethod
    async def get_log(self, log_id: str) -> Log | None: ...

    @abc.abstractmethod
    async def list_logs(self, filter: LogFilter = LogFilter(), opts: ListOptions = ListOptions()) -> Page:
        """Logs in creation order, projected, paginated (``data`` reassembled)."""

    @abc.abstractmethod
    async def task_logs(self, task_id: str, *, num: int | None = None, group: bool = False,
                        order: str = "desc") -> list[Log]:
        """Logs of a task by timestamp (``order`` asc|desc); ``group``: only the
        newest log of each name; ``num``: at most that many."""

    @abc.abstractmethod
    async def delete_log(self, log_id: str) -> bool: ...

    @abc.abstractmethod
    async def delete_logs(self, *, dataset_id: str | None = None, task_id: str | None = None) -> int:
        """Delete logs (with their chunks) of a task or dataset; returns count."""

    # ------------------------------------------------------------ files

    @abc.abstractmethod
    async def add_file(self, dataset_id: str, remote: str, movement: str, *, task_id: str | None = None,
                       job_index: int | None = None, task_name: str | None = None, local: str = "",
                       type: str = "permanent", transfer: str = "true",
                       compression: bool = False) -> DatasetFile:
        """Add a per-job file, to ``task_id`` or to the task resolved from
        (job_index, task_name). NotFoundError when that task does not exist."""

    @abc.abstractmethod
    async def list_files(self, dataset_id: str, task_id: str | None = None) -> list[DatasetFile]: ...

    @abc.abstractmethod
    async def delete_files(self, dataset_id: str, task_id: str) -> int: ...

    # ------------------------------------------------------------ pilots

    @abc.abstractmethod
    async def register_pilot(self, pilot: NewPilot) -> str:
        """Record a pilot (state active, last_seen now); returns pilot_id."""

    @abc.abstractmethod
    async def pilot_heartbeat(self, pilot_id: str, free: dict[str, Any] | None,
                              tasks: Sequence[str]) -> HeartbeatReply:
        """Update last_seen, free resources and running task ids; the reply
        carries the drain flag. ``found`` False for an unknown pilot."""

    @abc.abstractmethod
    async def get_pilot(self, pilot_id: str) -> Pilot | None: ...

    @abc.abstractmethod
    async def list_pilots(self, *, site: str | None = None, state: str | None = None) -> list[Pilot]: ...

    @abc.abstractmethod
    async def set_pilot_drain(self, pilot_id: str, drain: bool = True) -> bool: ...

    @abc.abstractmethod
    async def set_pilot_state(self, pilot_id: str, state: str) -> bool:
        """active | lost | exited."""

    @abc.abstractmethod
    async def mark_lost_pilots(self, last_seen_before: float) -> list[str]:
        """Active pilots silent since before that epoch time -> lost; their ids."""

    @abc.abstractmethod
    async def delete_pilot(self, pilot_id: str) -> bool: ...

    # ------------------------------------------------------------ users, groups, rights, usage

    @abc.abstractmethod
    async def create_user(self, username: str, priority: float = 0.5) -> User:
        """ConflictError if the username exists."""

    @abc.abstractmethod
    async def ensure_user(self, username: str) -> User:
        """The user, created with the default priority when missing (idempotent)."""

    @abc.abstractmethod
    async def get_user(self, username: str) -> User | None: ...

    @abc.abstractmethod
    async def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    async def set_user_priority(self, username: str, priority: float) -> bool:
        """InvalidArgumentError unless 0 <= priority <= 1; False if missing."""

    @abc.abstractmethod
    async def delete_user(self, username: str) -> bool: ...

    @abc.abstractmethod
    async def create_group(self, name: str, priority: float = 0.5) -> Group:
        """ConflictError if it exists."""

    @abc.abstractmethod
    async def list_groups(self) -> list[Group]: ...

    @abc.abstractmethod
    async def set_group_priority(self, name: str, priority: float) -> bool: ...

    @abc.abstractmethod
    async def delete_group(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def set_dataset_rights(self, dataset_id: str, rights: DatasetRights) -> None:
        """Replace the rights of a dataset."""

    @abc.abstractmethod
    async def rights_for(self, dataset_ids: Sequence[str]) -> dict[str, DatasetRights]:
        """Rights of many datasets in one query (a page of a listing); datasets
        without rights are absent."""

    @abc.abstractmethod
    async def add_usage(self, username: str, group: str, core_hours: float) -> None:
        """Add consumed core-hours to the user's and the group's totals."""

    @abc.abstractmethod
    async def list_usage(self) -> list[Usage]: ...

    # ------------------------------------------------------------ loop leases, scratch

    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or extend the named lease; True iff ``holder`` holds it now
        (free, expired, or already its own). Two replicas: exactly one wins."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give it up if ``holder`` holds it."""

    @abc.abstractmethod
    async def add_scratch_file(self, f: ScratchFile) -> None:
        """Record (or replace, keyed by path) a scratch-store file."""

    @abc.abstractmethod
    async def list_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        """Files of one job (``job_index``) or all of a dataset (None)."""

    @abc.abstractmethod
    async def delete_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        """Forget those records; return them so the caller removes the files."""

    # ------------------------------------------------------------ action messages (added by the lead for /actions/*)

    @abc.abstractmethod
    async def add_action(self, action: str, payload: dict[str, Any], *, priority: int = 10,
                         dataset_id: str | None = None, dedupe_key: str | None = None) -> ActionMessage:
        """Queue a message (status queued, created_at now). With ``dedupe_key``:
        when a queued or processing message of the same action has that key,
        return it instead of adding another (IceProd de-duplicates
        materialization requests per dataset)."""

    @abc.abstractmethod
    async def get_action(self, message_id: str) -> ActionMessage | None: ...

    @abc.abstractmethod
    async def action_counts(self, action: str) -> dict[str, int]:
        """{status: count} for one action, every status of
        ``records.ACTION_STATUSES`` present (zeros included)."""

    @abc.abstractmethod
    async def latest_action(self, action: str, dataset_id: str) -> ActionMessage | None:
        """Newest message of that action for the dataset."""

    @abc.abstractmethod
    async def pop_action(self, worker_id: str, *, stale_after: float = 910.0) -> ActionMessage | None:
        """Atomically take the highest-priority, oldest queued message (or a
        processing one locked more than ``stale_after`` seconds ago: its worker
        died) -> processing, attempts +1, worker_id and locked_at set. Two
        workers never get the same message."""

    @abc.abstractmethod
    async def finish_action(self, message_id: str, worker_id: str, status: str, *, error_message: str = "",
                            payload_update: dict[str, Any] | None = None) -> bool:
        """processing -> ``status`` (complete | error | queued to release it),
        only if ``worker_id`` still holds it; payload keys merged. True iff applied."""

    @abc.abstractmethod
    async def update_action_progress(self, message_id: str, progress: float,
                                     payload_update: dict[str, Any] | None = None) -> bool:
        """Record progress (0..100) of a processing message."""

    @abc.abstractmethod
    async def delete_actions_before(self, created_before: str) -> int:
        """Drop finished (complete/error) messages older than that time string."""
