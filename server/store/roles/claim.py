"""Claim and leases: the scheduling hot path and the loop leases.

Everything that moves a task through waiting -> queued -> processing -> an
end state under a lease: dependency release, queueing, the claim, the three
fenced reports, task leases, and the named leases background loops use so
that one replica runs each loop.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc
from typing import Any, Mapping, Sequence

from ..records import AttemptResult, ClaimedTask, ClaimRequest, QueueClass, ReportOutcome, RetryPolicy


class ClaimRole(abc.ABC):
    """The claim-and-leases part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def release_dependencies(self, limit: int = 10_000, dataset_id: str | None = None) -> int:
        """Move up to ``limit`` idle tasks of ``processing`` datasets whose
        dependencies (any dataset) are all complete to waiting; return how many.
        Tasks of suspended or finished datasets stay idle. Index-driven: its cost
        follows the number of releasable tasks, not of idle ones."""

    @abc.abstractmethod
    async def queue_tasks(self, num: int, *, dataset_deprio: Sequence[str] = (),
                          dataset_id: str | None = None) -> list[str]:
        """Move up to ``num`` waiting tasks of processing datasets to queued,
        highest priority first (ties: the higher offset, then creation order).
        A waiting task's priority is clamp(its dataset's base
        (:meth:`set_priority_bases`) + its offset,
        ``rules.task_priority_offset``, stored at creation); queueing writes
        it into the task. Tasks of ``dataset_deprio`` datasets come last;
        among those, the last-listed dataset is taken first (the list is
        most-loaded first, as IceProd's grid sends it). Returns the task ids.
        A waiting task with a ``not_before`` (a paced retry) is not queued
        before that time: each call first clears the ``not_before`` of the
        tasks whose time has come (an index range of just those), and the
        others are not read. Cost: the tasks moved and made eligible plus one
        index probe per processing dataset."""

    @abc.abstractmethod
    async def next_not_before(self) -> float | None:
        """The earliest ``not_before`` of a paced retry still held back (one
        index probe), None when there is none: when queueing should look again."""

    @abc.abstractmethod
    async def set_priority_bases(self, bases: Mapping[str, float]) -> int:
        """Set the dataset-level part of the task priorities of each dataset
        (dataset_id -> base): every idle or waiting task of the dataset has
        priority clamp(base + its offset) from now on, without a task row
        written; the dataset's queued tasks (at most the queue) are re-priced
        in the same call. Returns the datasets whose base changed."""

    @abc.abstractmethod
    async def queued_classes(self) -> list[QueueClass]:
        """Queued-task counts per resource class (provisioning demand)."""

    @abc.abstractmethod
    async def queued_by_dataset(self, class_keys: Sequence[str]) -> dict[str, dict[str, int]]:
        """class_key -> {dataset_id: queued tasks} for the given classes (the
        unmatchable ones: few). Cost: the queued tasks of those classes, read by index."""

    @abc.abstractmethod
    async def class_batchsys(self, class_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """class_key -> the ``requirements.batchsys`` of one queued task of the class (every
        task of a batchsys group has the same; classes with no queued task are left out).
        Cost: one index probe per class."""

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

    # ------------------------------------------------------------ loop leases

    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or extend the named lease; True iff ``holder`` holds it now
        (free, expired, or already its own). Two replicas: exactly one wins."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give it up if ``holder`` holds it."""
