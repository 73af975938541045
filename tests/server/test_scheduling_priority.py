"""IceProd's priority formulas (reference §6.3) against values worked out by hand,
and the usage-based fair share on top of them."""
from __future__ import annotations

import pytest

from server.scheduling.fairshare import FairShare, decay, share_factor
from server.scheduling.priority import (
    DatasetInputs, dataset_priorities, dataset_priority, group_priority, task_priority,
)
from server.store import Usage


def ds(dataset_id: str = "d1", *, priority: float = 0.5, username: str = "alice", group: str = "users",
       jobs: int = 10, age: float = 0.0, active: int = 10) -> DatasetInputs:
    return DatasetInputs(dataset_id=dataset_id, priority=priority, username=username, group=group,
                         jobs_submitted=jobs, age_days=age, active_tasks=active)


def test_users_group_dataset_by_hand() -> None:
    # p = 1 * 0.5/1.0 = 0.5; users group: no group adjustment; * sqrt(0.5) * 0.8
    # (users' weight) = 0.28284; 10 jobs: size factor min(1, 1000**0.05) = 1;
    # minus (10/40)/4 = 0.0625 -> 0.22034
    p = dataset_priority(ds(), max_user_prio=1.0, max_group_prio=1.0, user_prio=0.5, group_prio=0.8,
                         active_tasks_all=40)
    assert p == pytest.approx(0.22034271, abs=1e-7)


def test_production_group_old_huge_dataset_by_hand() -> None:
    # p = 0.2/0.2 = 1; minus (1 - 0.2/0.8)/4 = 0.1875 -> 0.8125; not users: user
    # priority ignored; * 0.5 (simprod) = 0.40625; 3 days old: * (72**0.05 - 0.17)
    # = 1.06838 -> 0.43403; 100,000 jobs: * 0.1**0.05 = 0.89125 -> 0.38684
    p = dataset_priority(ds(priority=0.2, group="simprod", jobs=100_000, age=3.0, active=0),
                         max_user_prio=0.2, max_group_prio=0.8, user_prio=0.01, group_prio=0.5,
                         active_tasks_all=100)
    assert p == pytest.approx(0.38684, abs=1e-5)


def test_age_under_a_day_and_zero_priority() -> None:
    young = dataset_priority(ds(age=0.9), max_user_prio=0.5, max_group_prio=0.5, user_prio=1.0,
                             group_prio=1.0, active_tasks_all=0)
    assert young == 1.0  # 0.5/0.5 * sqrt(1) * 1, no age factor below one day
    zero = dataset_priority(ds(priority=0.0), max_user_prio=0.5, max_group_prio=0.5, user_prio=1.0,
                            group_prio=1.0, active_tasks_all=0)
    assert zero == 0.0


def test_result_is_clamped() -> None:
    # a dataset holding the whole backlog with a low weight goes below zero -> 0
    p = dataset_priority(ds(priority=0.1, active=100), max_user_prio=1.0, max_group_prio=1.0, user_prio=0.5,
                         group_prio=0.5, active_tasks_all=100)
    assert p == 0.0


def test_group_weights_defaults_and_overrides() -> None:
    assert group_priority("admin", {}) == 1.0
    assert group_priority("filtering", {}) == 0.9
    assert group_priority("users", {}) == 0.8
    assert group_priority("simprod", {}) == 0.5
    assert group_priority("somewhere", {}) == 0.5
    assert group_priority("simprod", {"simprod": 0.7}) == 0.7


def test_dataset_priorities_uses_maxima_over_the_list() -> None:
    datasets = [ds("a", priority=1.0, active=0), ds("b", priority=0.25, active=0),
                ds("c", priority=0.5, username="bob", active=0)]
    prios = dataset_priorities(datasets, user_priorities={"alice": 1.0, "bob": 0.25}, group_priorities={})
    # a: 1/1 * 1 * 0.8; b: 0.25/1 * 0.8; c: 0.5/0.5 * sqrt(0.25) * 0.8
    assert prios == pytest.approx({"a": 0.8, "b": 0.2, "c": 0.4})


def test_dataset_priorities_fair_share_factor() -> None:
    prios = dataset_priorities([ds("a", priority=1.0, active=0)], user_priorities={"alice": 1.0},
                               group_priorities={}, fair_share={"a": 0.5})
    assert prios["a"] == pytest.approx(0.4)


@pytest.mark.parametrize("dataset_prio, task_index, job_index, jobs, expected", [
    (0.3, 1, 500, 1000, 0.3 + (1 / 3) / 5 - 0.5 / 5),      # 0.26667: no early-job boost
    (0.1, 0, 99, 1000, 0.1 - 0.099 / 5 + 0.01),             # 0.0902: last boosted job
    (0.3, 1, 10, 1000, 1.0),                                 # early jobs saturate at 1
    (0.0, 0, 999, 1000, 0.0),                                # clamped at 0
])
def test_task_priority_by_hand(dataset_prio: float, task_index: int, job_index: int, jobs: int,
                               expected: float) -> None:
    p = task_priority(dataset_prio, task_index=task_index, job_index=job_index, tasks_per_job=3,
                      jobs_submitted=jobs)
    assert p == pytest.approx(expected, abs=1e-9)


def test_task_priority_of_an_empty_dataset_is_zero() -> None:
    assert task_priority(0.9, task_index=0, job_index=0, tasks_per_job=0, jobs_submitted=0) == 0.0


def test_decay_half_life() -> None:
    assert decay(8.0, 2 * 3600, 1.0) == pytest.approx(2.0)
    assert decay(8.0, 0, 1.0) == 8.0
    assert decay(8.0, 10, 0.0) == 0.0


def test_share_factor_bounds() -> None:
    assert share_factor(0.0, 0.0, 0.5) == 1.0
    assert share_factor(1.0, 1.0, 0.5) == 0.5
    assert share_factor(1.0, 0.0, 0.5) == 0.75


def test_fair_share_decays_usage_between_observations() -> None:
    fs = FairShare(half_life_hours=1.0, weight=0.5)
    fs.observe([Usage("user", "alice", 10.0), Usage("user", "bob", 0.0)], now=0.0)
    assert fs.recent("user", "alice", 3600.0) == pytest.approx(5.0)
    # bob uses 5 core-hours during the next hour; alice nothing
    fs.observe([Usage("user", "alice", 10.0), Usage("user", "bob", 5.0)], now=3600.0)
    assert fs.recent("user", "alice", 3600.0) == pytest.approx(5.0)
    assert fs.recent("user", "bob", 3600.0) == pytest.approx(5.0)
    assert fs.shares("user", ["alice", "bob"], 3600.0) == pytest.approx({"alice": 0.5, "bob": 0.5})
    # a total that goes down (accounting reset) adds nothing
    fs.observe([Usage("user", "alice", 0.0)], now=7200.0)
    assert fs.recent("user", "alice", 7200.0) == pytest.approx(2.5)


def test_fair_share_factors_per_dataset() -> None:
    fs = FairShare(half_life_hours=24.0, weight=0.5)
    fs.observe([Usage("user", "alice", 30.0), Usage("user", "bob", 10.0),
                Usage("group", "users", 40.0), Usage("group", "simprod", 0.0)], now=0.0)
    factors = fs.factors({"d1": ("alice", "users"), "d2": ("bob", "users"), "d3": ("carol", "simprod")}, now=0.0)
    # alice: 1 - 0.5 * (0.75 + 1) / 2; bob: 1 - 0.5 * (0.25 + 1) / 2; carol: no usage at all
    assert factors == pytest.approx({"d1": 0.5625, "d2": 0.6875, "d3": 1.0})


def test_fair_share_without_usage_is_neutral() -> None:
    fs = FairShare(half_life_hours=24.0)
    assert fs.factors({"d1": ("alice", "users")}, now=0.0) == {"d1": 1.0}
