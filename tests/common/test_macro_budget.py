"""The macro budget: a whole submission check, a task plan or one job's
requirements stop with a clear problem once their CPU time or the
characters expansion produced run out (common/macros/budget.py)."""
from __future__ import annotations

import pytest

from benchmarks.worst_configs import exponential_parameters, many_iterations
from common.config import fill_defaults
from common.macros import BudgetExceeded, budget, expand
from common.plan import JobContext, build_task_plan, prepare_submission, task_requirements


def test_ten_million_iterations_run_out_of_cpu_time():
    _, problems = prepare_submission(many_iterations(), 10, seconds=0.3)
    assert problems[-1].path == "config"
    assert "more than 0.3 s of CPU time" in problems[-1].message


def test_exponential_parameters_run_out_of_characters():
    _, problems = prepare_submission(exponential_parameters(levels=18, tasks=40), 10, work=1_000_000)
    assert "more than 1,000,000 characters" in problems[-1].message


def test_a_plan_outside_any_budget_gets_the_default_one():
    with budget(0.2, reuse=False):  # stands in for the default, which is 10 s
        with pytest.raises(BudgetExceeded):
            build_task_plan(many_iterations(), 0, JobContext(dataset=1, job=0, jobs_submitted=1))


def test_one_jobs_requirements_have_a_small_budget_of_their_own():
    config = exponential_parameters(levels=19, tasks=1)
    config["tasks"][0]["requirements"] = {"os": "$(p18)"}
    with pytest.raises(BudgetExceeded, match="more than 1,000,000 characters"):
        task_requirements(fill_defaults(config), 0, JobContext(dataset=1, job=0, jobs_submitted=1))


def test_budgets_nest_and_plain_configs_are_untouched():
    with budget(5.0, 1000) as outer:
        with budget() as inner:
            assert inner is outer  # a plan inside a submission check charges the check's budget
        assert expand("$(a)-$(a)", parameters={"a": "x" * 10}) == "x" * 10 + "-" + "x" * 10
        assert outer.spent > 0
    _, problems = prepare_submission({"version": 3.2, "tasks": [
        {"name": "a", "trays": [{"modules": [{"src": "x.py", "args": "$(job)"}]}]}]}, 3, seconds=1.0)
    assert problems == []

