"""Task requirements of one job, with macros expanded as the task will see them.

Materialization resolves each task's ``requirements`` per job. Most configs
have plain numbers there, so a requirements block without any ``$`` is
checked once and then SHARED by every job (no copy, no expansion): that is
what makes a 100,000-job dataset cheap. Only blocks holding macros
(``"memory": "$eval(2*$(iter)+1)"``) are expanded per job, in the scopes
the runner uses (steering parameters → task parameters) and with the
runtime values of that job. ``$(task)`` is the task NAME here, as at run
time (IceProd used the index at materialization: reference §11).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from common.macros import Diagnostic, expand, expand_scope, runtime_options
from common.plan import DEFAULT_ENVIRONMENT

COUNTS = ("cpu", "gpu")
AMOUNTS = ("memory", "disk", "time")


class RequirementsError(ValueError):
    """A task's requirements do not resolve for some job (message names job, task and key)."""


def has_macro(value: Any) -> bool:
    if isinstance(value, str):
        return "$" in value
    if isinstance(value, dict):
        return any(has_macro(v) for v in value.values())
    if isinstance(value, list):
        return any(has_macro(v) for v in value)
    return False


def normalize(requirements: dict[str, Any], where: str) -> dict[str, Any]:
    """Check and coerce resolved values: cpu/gpu integers (a gpu LIST counts its
    entries, as IceProd), memory/disk/time positive numbers."""
    out = dict(requirements)
    for key in COUNTS:
        if key not in out:
            continue
        value = out[key]
        if key == "gpu" and isinstance(value, list):
            value = len(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "cpu" else 0):
            raise RequirementsError(f"{where}['{key}']: {key} must be an integer, got {out[key]!r}")
        out[key] = value
    for key in AMOUNTS:
        if key not in out:
            continue
        value = out[key]
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise RequirementsError(f"{where}['{key}']: {key} must be a number > 0, got {out[key]!r}")
        out[key] = value
    return out


@dataclass
class TaskRequirements:
    """Resolver for one task of a config (built once per materialization call)."""

    config: dict[str, Any]
    """The default-filled dataset config."""
    task_index: int
    name: str
    raw: dict[str, Any]
    static: dict[str, Any] | None
    """The shared, already checked requirements when ``raw`` holds no macro."""

    @classmethod
    def build(cls, config: dict[str, Any], task_index: int) -> "TaskRequirements":
        task = config["tasks"][task_index]
        raw = task.get("requirements") or {}
        name = str(task.get("name") or task_index)
        where = f"config['tasks'][{task_index}]['requirements']"
        static = None if has_macro(raw) else normalize(raw, where)
        return cls(config=config, task_index=task_index, name=name, raw=raw, static=static)

    def for_job(self, *, dataset: int, dataset_id: str, job: int, jobs_submitted: int, task_id: str,
                debug: bool = False) -> dict[str, Any]:
        if self.static is not None:
            return self.static
        options = runtime_options(self.config, dataset=dataset, dataset_id=dataset_id, job=job,
                                  jobs_submitted=jobs_submitted, task=self.name, task_id=task_id, debug=debug)
        config = {**self.config, "options": options}
        task = self.config["tasks"][self.task_index]
        steering = expand_scope((self.config.get("steering") or {}).get("parameters") or {}, outer=None,
                                config=config, environment=DEFAULT_ENVIRONMENT)
        params = expand_scope(task.get("parameters") or {}, outer=steering, config=config,
                              environment=DEFAULT_ENVIRONMENT)
        where = f"config['tasks'][{self.task_index}]['requirements']"
        problems: list[Diagnostic] = []
        resolved = expand(copy.deepcopy(self.raw), config=config, parameters=params,
                          environment=DEFAULT_ENVIRONMENT, diagnostics=problems, path=where)
        if problems:
            first = problems[0]
            raise RequirementsError(f"job {job}, task {self.name!r}: {first.path}: {first.message}")
        try:
            return normalize(resolved, where)
        except RequirementsError as exc:
            raise RequirementsError(f"job {job}, task {self.name!r}: {exc}") from None
