"""Plain records that cross rooms: what the store hands to handlers, loops and
the benchmark, and what they hand back.

They are backend-neutral on purpose: the SQLite and the MongoDB backends both
build exactly these objects, so a handler cannot tell (and must not care)
which one it talks to. ``to_doc()`` gives the IceProd-shaped JSON document
(reference §1.4/§4.6) that the REST layer returns, with frazil's additions.
"""
from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from common.resources import Resources

JsonDict = dict[str, Any]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def nowstr() -> str:
    """IceProd's timestamp format: UTC, microseconds, no zone suffix."""
    return datetime.datetime.now(datetime.timezone.utc).strftime(TIME_FORMAT)


def new_id() -> str:
    """IceProd-style identifier (``uuid1().hex``), used for every kind of id."""
    return uuid.uuid1().hex


def _doc(obj: Any) -> JsonDict:
    return asdict(obj)


# ---------------------------------------------------------------- datasets


@dataclass
class NewDataset:
    """What a submitter provides; the store fills number, dates and status."""

    description: str
    jobs_submitted: int
    tasks_per_job: int
    group: str
    username: str
    tasks_submitted: int | None = None
    """Defaults to ``jobs_submitted * tasks_per_job``."""
    priority: float = 0.5
    debug: bool = False
    jobs_immutable: bool = False
    always_active: bool = False
    status: str = "processing"
    dataset_id: str | None = None
    """Given by the caller to make a retried create idempotent; else generated."""


@dataclass
class Dataset:
    dataset_id: str
    dataset: int
    """Sequential human number (1, 2, ...) from an atomic counter."""
    description: str
    jobs_submitted: int
    tasks_submitted: int
    tasks_per_job: int
    group: str
    username: str
    status: str
    start_date: str
    status_changed: str
    priority: float = 0.5
    debug: bool = False
    jobs_immutable: bool = False
    truncated: bool = False
    always_active: bool = False

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class ConfigVersion:
    """One immutable version of a dataset config; the newest is "current"."""

    dataset_id: str
    version: int
    config: JsonDict
    author: str
    comment: str
    created: str
    sha256: str
    """sha256 of the canonical JSON (sorted keys, no spaces) of ``config``."""

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class DatasetRights:
    """Per-dataset read/write rights (IceProd's ``attr_auths``)."""

    read_groups: list[str] = field(default_factory=list)
    write_groups: list[str] = field(default_factory=list)
    read_users: list[str] = field(default_factory=list)
    write_users: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- jobs and tasks


@dataclass
class NewTask:
    """A task to create. Ids are chosen by the caller so that ``depends`` can
    name tasks of the same job before they exist and so a retried bulk create
    is idempotent."""

    name: str
    task_index: int
    requirements: JsonDict = field(default_factory=dict)
    depends: list[str] = field(default_factory=list)
    """task_ids, possibly of another dataset (``dataset_id:task`` deps resolved)."""
    priority: float = 0.0
    status: str = "idle"
    task_id: str = field(default_factory=new_id)


@dataclass
class NewJob:
    job_index: int
    tasks: list[NewTask]
    status: str = "processing"
    job_id: str = field(default_factory=new_id)


@dataclass
class Job:
    job_id: str
    dataset_id: str
    job_index: int
    status: str
    status_changed: str

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class Task:
    task_id: str
    dataset_id: str
    job_id: str
    job_index: int
    task_index: int
    name: str
    depends: list[str]
    requirements: JsonDict
    status: str
    status_changed: str
    priority: float = 0.0
    failures: int = 0
    """Every reset/failed report (IceProd's counter)."""
    failures_nonphysics: int = 0
    """Non-physics failures that use up the retry budget (cap: max_retries)."""
    failures_infra: int = 0
    """Infrastructure failures (eviction, pilot lost): their own budget."""
    evictions: int = 0
    walltime: float = 0.0
    """Hours of the successful attempt."""
    walltime_err: float = 0.0
    """Hours spent in failed attempts."""
    walltime_err_n: int = 0
    site: str = ""
    instance_id: str = ""
    """Fencing token of the current claim; '' when not processing."""
    pilot_id: str = ""
    lease_expires: float | None = None
    """Epoch seconds; only while processing."""
    resource_class: str = ""
    attempts: int = 0
    """Number of attempts started so far (the next claim is attempt attempts+1)."""
    config_version: int | None = None

    def to_doc(self) -> JsonDict:
        return _doc(self)


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


# ---------------------------------------------------------------- claim and reports


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


@dataclass
class ClaimedTask:
    task: Task
    """The task as it is after the claim (status processing)."""
    instance_id: str
    attempt: int
    lease_expires: float


class FailureClass(str, enum.Enum):
    PHYSICS = "physics"
    NONPHYSICS = "nonphysics"
    INFRA = "infra"
    """Eviction, pilot lost: not the task's fault; own budget."""


@dataclass
class OutputFile:
    url: str
    size: int
    sha512: str


@dataclass
class AttemptResult:
    """What a pilot reports at the end of an attempt (or what the lease reaper
    concludes). Everything is optional so that a terse IceProd-style report
    (``time_used`` only) still works."""

    time_used: float | None = None
    """Seconds of wall time."""
    resources: JsonDict = field(default_factory=dict)
    """Measured peaks: cpu (efficiency), gpu, memory GB, disk GB, time h."""
    site: str = ""
    host: str = ""
    failure_class: FailureClass | None = None
    kind: str = ""
    """What ran out or broke: memory, disk, time, eviction, pilot-lost, transfer, ..."""
    rule: str = ""
    """Name of the classification rule that matched."""
    reason: str = ""
    modules: list[JsonDict] = field(default_factory=list)
    """Per module: name, resolved argv, env_shell, exit_code."""
    exit_codes: list[int] = field(default_factory=list)
    inputs: list[JsonDict] = field(default_factory=list)
    outputs: list[OutputFile] = field(default_factory=list)
    frazil_version: str = ""


@dataclass
class RetryPolicy:
    """Budgets and caps used by reset/fail/expire_leases (DESIGN.md §3.4)."""

    max_retries: int = 10
    """Non-physics failures allowed; failure number max_retries+1 -> failed."""
    max_infra_failures: int = 50
    caps: JsonDict = field(default_factory=dict)
    """Escalation caps per resource name, e.g. {"memory": 64, "time": 72}."""


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

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED


@dataclass
class Attempt:
    """One run of a task: the provenance record of DESIGN.md §3.8."""

    task_id: str
    attempt: int
    instance_id: str
    dataset_id: str
    job_id: str
    pilot_id: str
    host: str
    site: str
    start: str
    end: str | None
    status: str
    """processing | complete | reset | failed | lost | cancelled."""
    failure_class: str = ""
    kind: str = ""
    rule: str = ""
    reason: str = ""
    resources: JsonDict = field(default_factory=dict)
    """Requirements the attempt was claimed with."""
    resources_used: JsonDict = field(default_factory=dict)
    modules: list[JsonDict] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    inputs: list[JsonDict] = field(default_factory=list)
    outputs: list[JsonDict] = field(default_factory=list)
    frazil_version: str = ""
    config_version: int | None = None
    requirement_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_used: float | None = None

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class TaskStat:
    """An IceProd-compatible ``/tasks/{id}/task_stats`` document."""

    task_stat_id: str
    task_id: str
    dataset_id: str
    create_date: str
    stats: JsonDict

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class ProvenanceRecord:
    """How an output URL was made (``frazil provenance FILE``)."""

    url: str
    size: int
    sha512: str
    dataset_id: str
    dataset: int | None
    job_id: str
    job_index: int | None
    task_id: str
    task_name: str
    attempt: int
    instance_id: str
    config_version: int | None
    created: str


# ---------------------------------------------------------------- logs, files, scratch


@dataclass
class NewLog:
    name: str
    data: str
    dataset_id: str = ""
    task_id: str = ""
    attempt: int | None = None
    log_id: str = field(default_factory=new_id)


@dataclass
class Log:
    log_id: str
    name: str
    data: str
    """Whole text, reassembled from chunks when the log is large."""
    timestamp: str
    dataset_id: str = ""
    task_id: str = ""
    attempt: int | None = None
    size: int = 0

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class DatasetFile:
    """A per-job file of ``/datasets/{id}/files`` (legacy Data dict + ids)."""

    file_id: str
    dataset_id: str
    task_id: str
    remote: str
    movement: str
    local: str = ""
    type: str = "permanent"
    transfer: str = "true"
    compression: bool = False

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class ScratchFile:
    """A job_temp/dataset_temp file kept in the server's scratch store."""

    dataset_id: str
    path: str
    size: int
    sha512: str
    job_index: int | None = None
    """None for dataset_temp files."""
    created: str = field(default_factory=nowstr)


# ---------------------------------------------------------------- pilots, users


@dataclass
class NewPilot:
    resources: JsonDict
    """Total resources of the slot: cpu, gpu, memory, disk, time."""
    site: str = ""
    hostname: str = ""
    os: list[str] = field(default_factory=list)
    provider: str = ""
    provider_job_id: str = ""
    version: str = ""
    pilot_id: str = field(default_factory=new_id)


@dataclass
class Pilot:
    pilot_id: str
    resources: JsonDict
    free: JsonDict
    site: str
    hostname: str
    os: list[str]
    provider: str
    provider_job_id: str
    version: str
    state: str
    """active | lost | exited."""
    drain: bool
    tasks: list[str]
    registered: str
    last_seen: float
    """Epoch seconds of the last heartbeat (lost-pilot detection)."""

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class HeartbeatReply:
    found: bool
    drain: bool = False


@dataclass
class User:
    user_id: str
    username: str
    priority: float = 0.5

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class Group:
    name: str
    priority: float = 0.5

    def to_doc(self) -> JsonDict:
        return _doc(self)


@dataclass
class Usage:
    """Consumed core-hours (fair share)."""

    kind: str
    """user | group."""
    name: str
    core_hours: float


# ---------------------------------------------------------------- action messages


ACTION_STATUSES = ("queued", "processing", "error", "complete")


@dataclass
class ActionMessage:
    """A long operation requested through ``/actions/{action}`` (IceProd's
    services queue): submit, edit_config, materialization, dataset_status,
    job_status, task_status. Kept in the store so a restarted server resumes
    them and ``GET /actions/{action}/{id}`` answers from any replica."""

    message_id: str
    action: str
    status: str = "queued"
    payload: JsonDict = field(default_factory=dict)
    priority: int = 10
    created_at: str = ""
    updated_at: str = ""
    attempts: int = 0
    worker_id: str | None = None
    locked_at: float | None = None
    """Epoch seconds when a worker took it (a stale lock is taken over)."""
    error_message: str = ""
    progress: float = 0.0
    """0..100 for bulk status actions."""
    dataset_id: str | None = None
    dedupe_key: str | None = None

    def to_doc(self) -> JsonDict:
        return _doc(self)
