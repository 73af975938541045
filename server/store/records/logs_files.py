"""Logs, per-job files and scratch-store records."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import JsonDict, as_doc, new_id, nowstr


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
        return as_doc(self)


@dataclass(frozen=True)
class LogRef:
    """A log without its text: what retention needs to decide on it."""

    log_id: str
    name: str
    timestamp: str
    dataset_id: str
    task_id: str
    attempt: int | None
    size: int


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
        return as_doc(self)


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
