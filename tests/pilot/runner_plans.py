"""Hand-built TaskPlans around small real scripts, for the runner tests."""
from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil

from common.plan.records import DataTransfer, ModulePlan, TaskPlan, TrayPlan
from pilot.runner import Monitor, TaskResult, run_task

PY = sys.executable


def script(directory: Path, name: str, text: str) -> str:
    """Write a script file and return its absolute path."""
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def module(name: str, argv: list[str], **fields: Any) -> ModulePlan:
    return ModulePlan(name=name, index=0, path=f"modules[{name}]", argv=argv, **fields)


def tray(modules: list[ModulePlan], *, name: str = "main", iteration: int = 0,
         data: list[DataTransfer] | None = None) -> TrayPlan:
    return TrayPlan(name=name, index=0, iteration=iteration, path=f"trays[{name}]",
                    data=data or [], modules=modules)


def plan(trays: list[TrayPlan], **fields: Any) -> TaskPlan:
    values: dict[str, Any] = dict(dataset_id="abc123", dataset=20001, job=7, jobs_submitted=10,
                                  task_name="generate", task_index=0, task_id="t-1",
                                  requirements={})
    values.update(fields)
    return TaskPlan(trays=trays, **values)


def one_module(argv: list[str], **fields: Any) -> TaskPlan:
    return plan([tray([module("m", argv, **fields)])])


async def run(task: TaskPlan, base: Path, **kwargs: Any) -> TaskResult:
    """run_task with a fast monitor, so limits are enforced within ~0.1 s."""
    kwargs.setdefault("monitor", Monitor(interval=0.05))
    return await run_task(task, workdir_base=base, **kwargs)


async def gone(pid: int, timeout: float = 5.0) -> bool:
    """Whether ``pid`` ends (or is only a zombie left to its new parent) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.01)
    return False
