"""Jobs and tasks as the store hands them out, and what creates them."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import JsonDict, as_doc, new_id


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
        return as_doc(self)


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
    not_before: float | None = None
    """Epoch seconds: a paced retry (waiting) is not queued before then; None
    when the task may be queued now (docs/scheduling.md, "Retry pacing")."""

    def to_doc(self) -> JsonDict:
        return as_doc(self)


@dataclass
class TaskStat:
    """An IceProd-compatible ``/tasks/{id}/task_stats`` document."""

    task_stat_id: str
    task_id: str
    dataset_id: str
    create_date: str
    stats: JsonDict

    def to_doc(self) -> JsonDict:
        return as_doc(self)


@dataclass
class StoragePressure:
    """How close the store's storage is to full (``JobsRole.storage_pressure``):
    the materializer stops creating jobs when free space or the write log
    passes its limit. None: the backend cannot tell (MongoDB: the database
    server's disks are its own)."""

    free_bytes: int | None = None
    """Free space on the file system that holds the store."""
    log_bytes: int | None = None
    """Size of the write-ahead log (SQLite's WAL)."""
    log_limit: int | None = None
    """The size past which the log is "behind" (the writer checkpoints inline)."""
