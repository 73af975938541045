"""The claim and the answers to reports: what a pilot asks, what it gets, what a report did."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from common.resources import Resources

from .base import JsonDict
from .jobs import Task


@dataclass
class QueueClass:
    """Queued demand of one resource class (for provisioning and the claim path).

    The numbers are the largest requirement of any task ever queued in the
    class, so a pilot offering at least these fits every task of the class."""

    resource_class: str
    cpu: float
    gpu: float
    memory: float
    disk: float
    time: float
    site: str
    os: list[str]
    queued: int
    class_key: str = ""
    """The store's key of the class (resource class + site + os), for :meth:`queued_by_dataset`."""
    smallest: Resources | None = None
    """The smallest cpu, memory, disk and time any task of the class ever needed (each on its own;
    gpu is the class's): a slot below this fits no task of the class."""


@dataclass
class ClaimRequest:
    """A pilot asking for one task that fits what it has free right now."""

    pilot_id: str
    free: Resources
    """cpu, gpu (counts), memory, disk (GB), time (hours of lifetime left)."""
    os: list[str] = field(default_factory=list)
    site: str = ""
    lease_seconds: float = 600.0
    host: str = ""
    group: str = ""
    """The pilot's batchsys group (common/batchsys.py): ``os`` then holds its group words, and
    tasks without OS words (those of no group) are not for it."""


@dataclass
class ClaimedTask:
    task: Task
    """The task as it is after the claim (status processing)."""
    instance_id: str
    attempt: int
    lease_expires: float


@dataclass
class RetryPolicy:
    """Budgets and caps used by reset/fail/expire_leases (DESIGN.md §3.4)."""

    max_retries: int = 10
    """Non-physics failures allowed; failure number max_retries+1 -> failed."""
    max_infra_failures: int = 50
    caps: JsonDict = field(default_factory=dict)
    """Escalation caps per resource name, e.g. {"memory": 64, "time": 72}."""
    retry_delay: float = 0.0
    """Seconds a non-physics retry waits before it is queued again, doubled
    per non-physics failure (0: none; the server's default is 60)."""
    retry_delay_max: float = 3600.0
    """The longest such wait."""


class Outcome(str, enum.Enum):
    APPLIED = "applied"
    STALE = "stale"
    """The instance_id did not match the task's current claim: nothing changed."""
    NOT_FOUND = "not_found"


@dataclass
class ReportOutcome:
    outcome: Outcome
    status: str | None = None
    """Task status after the report (None unless applied)."""
    requirement_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Escalations applied by this report, as ``common.resources.escalate_requirements``
    reports them: {kind: {"old", "new", "measured", "cap", "factor", "capped"}}."""
    repeated: bool = False
    """Applied before (a retried report): answered as then, nothing changed now."""

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED
