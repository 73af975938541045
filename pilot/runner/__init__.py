"""The task runner shared by ``frazil run`` and the pilot.

``await run_task(plan, workdir_base=...)`` runs one :class:`common.plan.records.TaskPlan`
and returns a classified :class:`TaskResult`.
"""
from __future__ import annotations

from pilot.runner.monitor import Limits, Monitor, Usage
from pilot.runner.result import ModuleRecord, TaskResult, TransferRecord
from pilot.runner.signals import stop_on_signals
from pilot.runner.streaming import LogCallback
from pilot.runner.task import run_task
from pilot.runner.workdir import WorkDir, create_workdir

__all__ = ["Limits", "LogCallback", "ModuleRecord", "Monitor", "TaskResult", "TransferRecord",
           "Usage", "WorkDir", "create_workdir", "run_task", "stop_on_signals"]
