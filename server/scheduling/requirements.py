"""Task requirements of one job, with macros expanded as the task will see them.

Materialization resolves each task's ``requirements`` per job. Most configs
have plain values there, so a requirements block without any ``$`` is read
once and then SHARED by every job (no copy, no expansion): that is what
makes a 100,000-job dataset cheap. Only blocks holding macros
(``"memory": "$eval(2*$(iter)+1)"``) are expanded per job, by
``common.plan.task_requirements``: the same scopes and the same requirement
parser (``common.resources``) as the task's plan at run time. ``$(task)`` is
the task NAME here, as at run time (IceProd used the index at
materialization: reference §11).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.batchsys import BatchsysError, checked, merged
from common.containers import needs_container
from common.macros import BudgetExceeded
from common.plan import JobContext, PlanError, task_requirements
from common.resources import RequirementError, parse_requirements


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


@dataclass
class TaskRequirements:
    """Resolver for one task of a config (built once per materialization call)."""

    config: dict[str, Any]
    """The stored (default-filled) dataset config."""
    task_index: int
    name: str
    raw: dict[str, Any]
    static: dict[str, Any] | None
    """The shared, already parsed requirements when ``raw`` holds no macro."""
    container: bool = False
    """The task names a ``container``: stored as ``requirements.container = true``, which
    the claim matches only with pilots that run images (common/containers.py)."""
    batchsys: dict[str, Any] | None = None
    """The task's checked ``batchsys`` overrides: stored as ``requirements.batchsys``; they make
    the task's pilot group and its pilots' submit lines (common/batchsys.py). Taken as written
    (no macros), as IceProd does."""

    @classmethod
    def build(cls, config: dict[str, Any], task_index: int) -> "TaskRequirements":
        task = config["tasks"][task_index]
        raw = task.get("requirements") or {}
        container = needs_container(task.get("container"))
        if container:
            raw = {**raw, "container": True}
        name = str(task.get("name") or task_index)
        try:
            steering = config.get("steering") if isinstance(config.get("steering"), dict) else {}
            batchsys = checked(merged(steering.get("batchsys"), task.get("batchsys"))) or None
        except BatchsysError as exc:
            raise RequirementsError(f"task {name!r}: config['tasks'][{task_index}]['batchsys']: {exc}") from None
        static = None
        if not has_macro(raw):
            try:
                static = parse_requirements(raw)
                if batchsys:
                    static["batchsys"] = batchsys
            except RequirementError as exc:
                where = f"config['tasks'][{task_index}]['requirements']"
                raise RequirementsError(f"task {name!r}: {where}['{exc.key}']: {exc.message}") from None
        return cls(config=config, task_index=task_index, name=name, raw=raw, static=static, container=container,
                   batchsys=batchsys)

    def for_job(self, *, dataset: int, dataset_id: str, job: int, jobs_submitted: int, task_id: str,
                debug: bool = False) -> dict[str, Any]:
        if self.static is not None:
            return self.static
        ctx = JobContext(dataset=dataset, job=job, jobs_submitted=jobs_submitted, dataset_id=dataset_id,
                         task_id=task_id, debug=debug)
        try:
            resolved = task_requirements(self.config, self.task_index, ctx)
            if self.batchsys:
                resolved = {**resolved, "batchsys": self.batchsys}
            return {**resolved, "container": True} if self.container else resolved
        except PlanError as exc:
            first = exc.problems[0]
            raise RequirementsError(f"job {job}, task {self.name!r}: {first.path}: {first.message}") from None
        except BudgetExceeded as exc:  # one job's own small budget (common.plan.REQUIREMENTS_SECONDS)
            raise RequirementsError(f"job {job}, task {self.name!r}: requirements: {exc}") from None
