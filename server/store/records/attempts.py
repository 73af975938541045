"""Attempts: what a pilot reports at the end of a run, the stored attempt (provenance)
and the provenance answer for an output URL."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .base import JsonDict, as_doc


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
        return as_doc(self)


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
