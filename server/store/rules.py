"""Backend-neutral rules both store backends apply, kept in one place so the
SQLite and MongoDB stores cannot drift apart: the shape (resource class,
site, os) of a task, what a failure report does to a task, which statuses
a guarded change may start from, and the config hash. Argument checks are in
``checks.py``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from common import resources as res
from common.batchsys import BatchsysError, checked, group_of, task_words
from common.containers import CONTAINER_NEED
from common import states

from .checks import check_status
from .errors import InvalidArgumentError
from .records import AttemptResult, FailureClass, RetryPolicy

INFRA_KINDS = frozenset({"eviction", "pilot-lost", "preemption"})
"""Failure kinds counted against the infrastructure budget even when a caller
did not set ``failure_class`` to infra."""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
"""One encoder for all calls: ``json.dumps`` with arguments builds a new one per
call, which costs more than the encoding of a small dict on bulk paths."""


def canonical_json(value: Any) -> str:
    return _CANONICAL(value)


def config_sha256(config: Mapping[str, Any]) -> str:
    """Hash of the canonical JSON: equal configs hash equal whatever their key order."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def allowed_from(kind: str, new: str, force: bool) -> frozenset[str]:
    """Statuses a guarded update may start from (every status when forced)."""
    check_status(kind, new)
    if force:
        return frozenset(states.STATUSES[kind])
    return states.previous_statuses(kind, new)


@dataclass(frozen=True)
class TaskShape:
    """What the claim path matches on, derived once from the requirements."""

    need: res.Resources
    site: str
    os: tuple[str, ...]
    resource_class: str
    """``common.resources.resource_class`` of the need (provisioning's shape)."""
    class_key: str
    """resource_class + site + os: tasks sharing it match exactly the same pilots
    up to their numeric needs, so the claim path can treat them as one queue."""


def checked_requirements(requirements: Any) -> dict[str, Any]:
    """Requirements given to the store, read by the one requirement parser:
    a copy with every resource a number (``"4GB"`` → 4.0), ``os`` a list;
    InvalidArgumentError naming the field."""
    try:
        return res.parse_requirements(requirements)
    except res.RequirementError as exc:
        raise InvalidArgumentError(f"invalid task requirements: {exc}") from None


def task_shape(requirements: Mapping[str, Any] | None) -> TaskShape:
    """Shape of a task; InvalidArgumentError for unreadable requirements."""
    requirements = requirements or {}
    try:
        need = res.Resources.from_requirements(requirements)
        os_tuple = tuple(sorted(set(res.parse_os(requirements.get("os")))))
        site = res.parse_site(requirements.get("site"))
    except res.RequirementError as exc:
        raise InvalidArgumentError(f"invalid task requirements: {exc}") from None
    if requirements.get("container") is True:  # the image is its OS: any pilot that runs images
        os_tuple = (CONTAINER_NEED,)
    try:  # tasks with batchsys overrides go to their group's pilots only (common/batchsys.py)
        os_tuple = task_words(group_of(checked(requirements.get("batchsys"))), os_tuple)
    except BatchsysError as exc:
        raise InvalidArgumentError(f"invalid task requirements: {exc}") from None
    rclass = res.resource_class(need)
    return TaskShape(need, site, os_tuple, rclass, f"{rclass}|{site}|{','.join(os_tuple)}")


def site_os_fit(task_site: str, task_os: Sequence[str], pilot_site: str, pilot_os: Sequence[str],
                grouped: bool = False) -> bool:
    """Task site empty or equal; task os list empty (not for a ``grouped`` pilot: it takes
    only its batchsys group's tasks) or intersecting the pilot's."""
    if task_site and task_site != pilot_site:
        return False
    if not task_os:
        return not grouped
    return bool(set(task_os) & set(pilot_os))


def failure_class_of(result: AttemptResult, physics: bool) -> FailureClass:
    """Class of a report: ``fail`` is physics; ``reset`` is non-physics unless
    the result says infra (or names an infrastructure kind) or physics."""
    if physics or result.failure_class is FailureClass.PHYSICS:
        return FailureClass.PHYSICS
    if result.failure_class is FailureClass.INFRA or result.kind in INFRA_KINDS:
        return FailureClass.INFRA
    return FailureClass.NONPHYSICS


@dataclass
class FailurePlan:
    """What a failure report does to a task; the backends write exactly this."""

    status: str
    failure_class: FailureClass
    failures_nonphysics: int
    failures_infra: int
    requirements: dict[str, Any]
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    err_hours: float = 0.0
    not_before: float | None = None
    """Epoch seconds before which the retry is not queued (None: at once)."""


def retry_delay(policy: RetryPolicy, failures_nonphysics: int) -> float:
    """Seconds the retry after non-physics failure number ``failures_nonphysics``
    waits: ``retry_delay``, doubled per failure, at most ``retry_delay_max``."""
    if policy.retry_delay <= 0 or failures_nonphysics < 1:
        return 0.0
    return min(policy.retry_delay * 2.0 ** min(failures_nonphysics - 1, 64), policy.retry_delay_max)


def plan_failure(requirements: Mapping[str, Any], failures_nonphysics: int, failures_infra: int,
                 result: AttemptResult, policy: RetryPolicy, physics: bool,
                 now: float | None = None) -> FailurePlan:
    """Counters, next status and escalated requirements after a failure.

    Only the resource that ran out is escalated (DESIGN.md §3.4), from the
    measured peak, never shrinking, capped by the policy. Infrastructure
    failures do not use up the retry budget, so an evicted task is not
    failed for being unlucky; they have their own, larger, budget.

    Retry pacing: a non-physics retry that changed nothing (a transfer
    that failed, a program that crashed, a resource already at its cap)
    waits ``retry_delay(policy, n)`` before it may be queued, so a failing
    service is not hammered 11 times in a minute. An escalated retry is not
    delayed (it asks for more and is expected to work), nor is an
    infrastructure failure (eviction, lost pilot): the task did nothing
    wrong and another pilot can take it now.
    """
    fclass = failure_class_of(result, physics)
    nonphysics, infra = failures_nonphysics, failures_infra
    if fclass is FailureClass.INFRA:
        infra += 1
    elif fclass is FailureClass.NONPHYSICS:
        nonphysics += 1
    if fclass is FailureClass.PHYSICS:
        status = "failed"
    elif nonphysics > policy.max_retries or infra > policy.max_infra_failures:
        status = "failed"
    else:
        status = states.RETRY_TARGET
    new_req: dict[str, Any] = dict(requirements)
    changes: dict[str, dict[str, Any]] = {}
    if result.kind in res.ESCALATABLE:
        try:
            new_req, changes = res.escalate_requirements(requirements, result.resources, policy.caps,
                                                         [result.kind])
        except ValueError as exc:
            raise InvalidArgumentError(f"cannot escalate {result.kind}: {exc}") from None
    hours = (result.time_used or 0.0) / 3600.0
    not_before = None
    if fclass is FailureClass.NONPHYSICS and status == states.RETRY_TARGET and not changes:
        delay = retry_delay(policy, nonphysics)
        if delay > 0:
            not_before = (time.time() if now is None else now) + delay
    return FailurePlan(status, fclass, nonphysics, infra, new_req, changes, hours, not_before)
# ------------------------------------------------------------ task priority

NO_PRIORITY_OFFSET = -1.0
"""Offset of a task of a dataset without jobs or tasks: with any dataset
priority in [0, 1] its task priority clamps to 0, as IceProd's formula says."""


def task_priority_offset(job_index: int, task_index: int, tasks_per_job: int, jobs_submitted: int) -> float:
    """The per-task part of IceProd's task priority (reference §6.3).

    Task priority = clamp(dataset priority + this offset, 0, 1). The offset
    depends only on the task's own indexes and the dataset's sizes, so both
    backends store it once, when the task is created; a change of the
    dataset priority then moves every task of the dataset at once without
    touching a task row (``server.scheduling.priority`` uses it too)."""
    if jobs_submitted < 1 or tasks_per_job < 1:
        return NO_PRIORITY_OFFSET
    offset = (task_index / tasks_per_job) / 5.0 - (job_index / jobs_submitted) / 5.0
    if job_index < 100:
        offset += (100 - job_index) / 100.0
    return offset


def task_priority_from(base: float, offset: float) -> float:
    """clamp(base + offset) to [0, 1]: a task's priority from its dataset's
    ``task_base`` and its stored offset."""
    p = base + offset
    return 0.0 if p < 0.0 else 1.0 if p > 1.0 else p
