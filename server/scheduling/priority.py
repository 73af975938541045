"""IceProd's dataset and task priority formulas (reference §6.3), as pure math.

The queue loop gathers the inputs from the store and calls these functions;
keeping them free of I/O lets the tests check them against hand-computed
values and lets an operator reproduce any number the server wrote.

Differences from IceProd, on purpose:

* IceProd loads every active task of every processing dataset to count
  them; here the counts come from the store's index-driven status counts.
* A usage-based fair-share factor (``server.scheduling.fairshare``) is
  applied on top of the formula, before the final clamp. With no recorded
  usage the factor is 1 and the numbers are IceProd's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from server.store.rules import task_priority_from, task_priority_offset

GROUP_PRIORITIES: dict[str, float] = {"admin": 1.0, "simprod": 0.5, "filtering": 0.9, "users": 0.8}
"""IceProd's built-in group weights; any other group gets DEFAULT_GROUP_PRIORITY.
A group record in the store (``PUT /groups/{name}/priority``) overrides them."""
DEFAULT_GROUP_PRIORITY = 0.5
DEFAULT_USER_PRIORITY = 0.5
USERS_GROUP = "users"
"""Only datasets of the plain ``users`` group are weighted by their owner's user priority."""


@dataclass(frozen=True)
class DatasetInputs:
    """What the formula needs to know about one processing dataset."""

    dataset_id: str
    priority: float
    """The priority the submitter or an admin set (0..1)."""
    username: str
    group: str
    jobs_submitted: int
    age_days: float
    """Days since ``start_date``."""
    active_tasks: int
    """idle + waiting + queued + processing tasks of this dataset."""


def clamp(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


def group_priority(group: str, stored: Mapping[str, float]) -> float:
    if group in stored:
        return stored[group]
    return GROUP_PRIORITIES.get(group, DEFAULT_GROUP_PRIORITY)


def dataset_priority(ds: DatasetInputs, *, max_user_prio: float, max_group_prio: float, user_prio: float,
                     group_prio: float, active_tasks_all: int, fair_share: float = 1.0) -> float:
    """Reference §6.3, step by step, then ``× fair_share``, clamped to [0, 1].

    ``max_user_prio`` / ``max_group_prio``: the highest ``priority`` among the
    processing datasets of the same user / group (this one included), so a
    user's own ranking of their datasets is kept but cannot lift them above
    other users. ``user_prio`` is the owner's user priority (only used for
    the ``users`` group, as in IceProd).
    """
    p = 1.0
    if max_user_prio > 0:
        p *= ds.priority / max_user_prio
    if ds.group != USERS_GROUP and max_group_prio > 0:
        p -= (1.0 - ds.priority / max_group_prio) / 4.0
    p *= math.sqrt(max(user_prio, 0.0)) if ds.group == USERS_GROUP else 1.0
    p *= group_prio
    if ds.age_days > 1:
        # favour datasets that have waited long (grows very slowly with age)
        p *= (ds.age_days * 24.0) ** 0.05 - 0.17
    if ds.jobs_submitted > 0:
        # penalise huge datasets a little so small ones are not starved
        p *= min(1.0, (10000.0 / ds.jobs_submitted) ** 0.05)
    if active_tasks_all > 0:
        p -= (ds.active_tasks / active_tasks_all) / 4.0
    p *= fair_share
    return clamp(p)


def dataset_priorities(datasets: list[DatasetInputs], *, user_priorities: Mapping[str, float],
                       group_priorities: Mapping[str, float],
                       fair_share: Mapping[str, float] | None = None) -> dict[str, float]:
    """Priorities of all processing datasets at once (the maxima and the
    backlog total are over this list). ``fair_share``: factor per dataset_id
    (missing = 1)."""
    max_user: dict[str, float] = {}
    max_group: dict[str, float] = {}
    for ds in datasets:
        max_user[ds.username] = max(max_user.get(ds.username, 0.0), ds.priority)
        max_group[ds.group] = max(max_group.get(ds.group, 0.0), ds.priority)
    active_all = sum(ds.active_tasks for ds in datasets)
    shares = fair_share or {}
    return {
        ds.dataset_id: dataset_priority(
            ds, max_user_prio=max_user[ds.username], max_group_prio=max_group[ds.group],
            user_prio=user_priorities.get(ds.username, DEFAULT_USER_PRIORITY),
            group_prio=group_priority(ds.group, group_priorities), active_tasks_all=active_all,
            fair_share=shares.get(ds.dataset_id, 1.0))
        for ds in datasets
    }


def task_priority(dataset_prio: float, *, task_index: int, job_index: int, tasks_per_job: int,
                  jobs_submitted: int) -> float:
    """Reference §6.3's task formula: later tasks of a job first (finish jobs),
    earlier jobs first, and a boost for the first 100 jobs (quick feedback on a
    new dataset), clamped to [0, 1]. The per-task part is
    ``server.store.rules.task_priority_offset``, which the store keeps per
    task, so the store and this function cannot disagree."""
    return task_priority_from(dataset_prio, task_priority_offset(job_index, task_index, tasks_per_job,
                                                                 jobs_submitted))
