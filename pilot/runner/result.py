"""Records of one task attempt: what ran, what moved, how it ended.

These are what the pilot reports and stores for provenance (DESIGN.md §3.8);
``TaskResult.summary()`` is the pinned last line of ``frazil run``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from common.transfer import TransferRecord

__all__ = ["ModuleRecord", "TaskResult", "TransferRecord"]


RECORDED_ENV = ("CUDA_VISIBLE_DEVICES", "OS_ARCH")
"""Environment values kept with each module record: what decides where and how it ran."""


@dataclass
class ModuleRecord:
    """One module execution: the exact argv, when it ran and how it ended."""

    name: str
    argv: list[str]
    env_shell: list[str] = field(default_factory=list)
    tray: str = ""
    iteration: int = 0
    exit_code: int | None = None
    """The process's exit status; None when it ended by a signal or never started."""
    signal: int | None = None
    start: float | None = None
    """Unix time the process started."""
    end: float | None = None
    killed_for: str | None = None
    """Why the runner killed it (time, memory, disk, eviction), None if it ended by itself."""
    environment: dict[str, str] = field(default_factory=dict)
    """The values of :data:`RECORDED_ENV` the module ran with (what ``frazil run --task
    --env-from-attempt`` reproduces); the pilot adds its site and OS."""


@dataclass
class TaskResult:
    """The classified outcome of one attempt."""

    status: str
    """complete | reset (non-physics: retry) | failed (physics)."""
    failure_class: str | None = None
    """None when complete, else "physics" or "non-physics"."""
    kind: str | None = None
    rule: str | None = None
    reason: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    """Measured peaks in the units of requirements: cpu (cores), memory/disk/gpumem (GB),
    time (hours), gpu (devices)."""
    modules: list[ModuleRecord] = field(default_factory=list)
    inputs: list[TransferRecord] = field(default_factory=list)
    outputs: list[TransferRecord] = field(default_factory=list)
    workdir: str = ""
    stdout: str = ""
    stderr: str = ""
    stdlog: str = ""
    start: float | None = None
    end: float | None = None
    action: str | None = None
    """What the classification rule asks for (e.g. escalate memory), if anything."""

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def summary(self) -> dict[str, Any]:
        """Exactly the pinned JSON object of ``frazil run`` (DESIGN.md §3.1)."""
        return {
            "status": self.status,
            "class": self.failure_class,
            "kind": self.kind,
            "rule": self.rule,
            "reason": self.reason,
            "resources": dict(self.resources),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
