"""What one task of one job will do, fully resolved: the contract between the
config language and whoever runs the task.

A :class:`TaskPlan` is built from a dataset config by :mod:`common.plan.build`
(macros expanded, args turned into argv, data URLs resolved) and consumed by
the pilot's task runner, ``frazil run`` and the submit-time checks. Keeping it
plain data means the same plan can be printed (``--dry-run``), checked at
submission, executed by a pilot, and stored with the attempt for provenance.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

INPUT_MOVEMENTS = frozenset({"input", "both"})
OUTPUT_MOVEMENTS = frozenset({"output", "both"})


@dataclass
class DataTransfer:
    """One file moved between the work dir and its storage location."""

    url: str
    """Where the file lives: an absolute URL (file://, http(s)://, ftp://, gsiftp://, osdf://)
    or a plain absolute path."""
    local: str
    """File name inside the task's work dir."""
    type: str = "permanent"
    """permanent | job_temp | dataset_temp | site_temp."""
    movement: str = "input"
    """input | output | both."""
    transfer: str = "yes"
    """yes | no | maybe (``maybe``: skip when the file is missing)."""
    path: str = ""
    """Where the entry is written in the config, for messages."""

    @property
    def is_input(self) -> bool:
        return self.movement in INPUT_MOVEMENTS and self.transfer != "no"

    @property
    def is_output(self) -> bool:
        return self.movement in OUTPUT_MOVEMENTS and self.transfer != "no"

    @property
    def optional(self) -> bool:
        return self.transfer == "maybe"


@dataclass
class ModulePlan:
    """One module: a program run with an argv list (never through a shell)."""

    name: str
    index: int
    path: str
    argv: list[str]
    """Full command: env_shell words, runner (python, /bin/sh, ./prog) and arguments."""
    env_shell: list[str] = field(default_factory=list)
    stdin: str | None = None
    """Program text fed on stdin (legacy ``running_class`` modules)."""
    env_clear: bool = True
    configs: dict[str, Any] = field(default_factory=dict)
    """JSON files written into the work dir before the module starts: {file name: value}."""
    fetch: list[DataTransfer] = field(default_factory=list)
    """Executables named by URL (``src`` or the first ``env_shell`` word) to download first."""
    data: list[DataTransfer] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    """The merged scope parameters the module saw (kept for provenance and debugging)."""


@dataclass
class TrayPlan:
    """One iteration of a tray."""

    name: str
    index: int
    iteration: int
    path: str
    data: list[DataTransfer] = field(default_factory=list)
    modules: list[ModulePlan] = field(default_factory=list)


@dataclass
class TaskPlan:
    """Everything needed to run one task of one job."""

    dataset_id: str
    dataset: int
    job: int
    jobs_submitted: int
    task_name: str
    task_index: int
    task_id: str
    requirements: dict[str, Any]
    container: str = ""
    steering_data: list[DataTransfer] = field(default_factory=list)
    task_data: list[DataTransfer] = field(default_factory=list)
    trays: list[TrayPlan] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    """The runtime options the macros were expanded with."""
    debug: bool = False

    def modules(self) -> Iterator[tuple[TrayPlan, ModulePlan]]:
        for tray in self.trays:
            for module in tray.modules:
                yield tray, module

    def all_data(self) -> Iterator[DataTransfer]:
        yield from self.steering_data
        yield from self.task_data
        for tray in self.trays:
            yield from tray.data
            for module in tray.modules:
                yield from module.data

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
