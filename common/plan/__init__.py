"""Resolved task plans: a dataset config + job + task → what exactly will run."""
from common.plan.build import (
    DEFAULT_ENVIRONMENT, JobContext, PlanError, build_task_plan, find_task, task_names, task_requirements,
)
from common.plan.check import check_submission, prepare_submission
from common.plan.records import DataTransfer, ModulePlan, TaskPlan, TrayPlan

__all__ = [
    "DEFAULT_ENVIRONMENT", "DataTransfer", "JobContext", "ModulePlan", "PlanError", "TaskPlan", "TrayPlan",
    "build_task_plan", "check_submission", "find_task", "prepare_submission", "task_names",
    "task_requirements",
]
