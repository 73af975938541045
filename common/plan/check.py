"""Submit-time checking: reject a config that would fail at run time.

IceProd only notices a bad macro when the task runs (often as a missing file
hours later). frazil builds the plan of every task for the first and the last
job at submission, in strict mode, and reports every problem at once, each
with its config path.
"""
from __future__ import annotations

from typing import Any

import json

from common.config import ConfigProblem, prepare_config
from common.macros import BudgetExceeded, Diagnostic, budget
from common.macros.budget import DEFAULT_SECONDS, DEFAULT_WORK
from common.plan.build import JobContext, PlanError, build_task_plan, task_requirements


def _problem(diag: Diagnostic, job: int) -> ConfigProblem:
    phrase = f" ({diag.phrase})" if diag.phrase and diag.phrase not in diag.message else ""
    return ConfigProblem(path=diag.path or "config", message=f"{diag.message}{phrase} [job {job}]")


def prepare_submission(config: Any, jobs: int, *, dataset: int = 1, dataset_id: str = "",
                       seconds: float = DEFAULT_SECONDS, work: int = DEFAULT_WORK) -> tuple[Any, list[ConfigProblem]]:
    """``config`` with its defaults filled (once) and all its problems when
    submitted with ``jobs`` jobs; no problems means it can run, and the filled
    config is the one to store.

    Schema and structure problems come first; macro expansion is only tried
    when the structure is sound (expanding a malformed config would only add
    noise). ``dataset`` is the dataset number the runtime values use.

    The whole check runs within ``seconds`` and ``work`` (characters macro
    expansion may produce, common.macros.budget); past either it stops with
    that one problem.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        return config, [ConfigProblem(path="jobs", message=f"number of jobs must be an integer >= 1, got {jobs!r}")]
    filled, problems = prepare_config(config)
    if problems:
        return filled, problems
    try:
        with budget(seconds, work, reuse=False):
            _plan_every_task(filled, jobs, dataset, dataset_id, problems)
    except BudgetExceeded as exc:
        problems.append(ConfigProblem(path="config", message=str(exc)))
    return filled, problems


def _plan_every_task(filled: Any, jobs: int, dataset: int, dataset_id: str, problems: list[ConfigProblem]) -> None:
    seen: set[tuple[str, str]] = set()
    for job in sorted({0, jobs - 1}):
        ctx = JobContext(dataset=dataset, job=job, jobs_submitted=jobs, dataset_id=dataset_id)
        for index, task in enumerate(filled.get("tasks", [])):
            try:
                build_task_plan(filled, index, ctx, strict=True, defaults_filled=True)
                if "$" in json.dumps(task.get("requirements") or {}):
                    try:  # what materialization will do per job, within its own small budget
                        task_requirements(filled, index, ctx)
                    except BudgetExceeded as exc:
                        problems.append(ConfigProblem(f"config['tasks'][{index}]['requirements']",
                                                      f"resolving the requirements of one job: {exc} [job {job}]"))
            except PlanError as exc:
                for diag in exc.problems:
                    key = (diag.path, diag.message)
                    if key not in seen:
                        seen.add(key)
                        problems.append(_problem(diag, job))


def check_submission(config: Any, jobs: int, *, dataset: int = 1, dataset_id: str = "") -> list[ConfigProblem]:
    """All problems of ``config`` submitted with ``jobs`` jobs (:func:`prepare_submission`)."""
    return prepare_submission(config, jobs, dataset=dataset, dataset_id=dataset_id)[1]
