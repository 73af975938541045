"""Datasets and their config versions."""
from __future__ import annotations

from dataclasses import dataclass

from .base import JsonDict, as_doc


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
        return as_doc(self)


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
        return as_doc(self)
