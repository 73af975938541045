"""ETA and forecast of a dataset (issue 16.4), and the install-wide hours left.

Cheap at a million tasks: the tasks left come from the counts by (name,
status), answered from an index; the hours per task from a bounded sample of
the dataset's newest complete attempts (``SAMPLE``, by the ``(dataset_id,
end)`` index); the rate from the count of completions in a recent window (the
same index). CPU-hours left for a task name = tasks left × mean wall hours of
its sampled attempts × the cores they were claimed with; GPU-hours likewise.
"""
from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from common import states
from server.store import Attempt, DatasetFilter, ListOptions, Store, TaskFilter
from server.store.records.base import TIME_FORMAT

SAMPLE = 1000
WINDOW_HOURS = 6.0
MAX_DATASETS = 200
"""The install-wide sum reads at most this many processing datasets."""
LEFT = states.ACTIVE_TASK_STATUSES
"""Tasks still to run: idle, waiting, queued, processing (failed and suspended
ones wait for a person, so they are not in the ETA)."""


def attempt_hours(attempt: Attempt) -> float | None:
    """Wall hours of a finished attempt: what the pilot reported, else end − start."""
    if attempt.time_used is not None:
        return max(0.0, attempt.time_used / 3600.0)
    if not attempt.end:
        return None
    try:
        start = datetime.datetime.strptime(attempt.start, TIME_FORMAT)
        end = datetime.datetime.strptime(attempt.end, TIME_FORMAT)
    except ValueError:
        return None
    return max(0.0, (end - start).total_seconds() / 3600.0)


def number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


async def names_of(store: Store, dataset_id: str, attempts: Sequence[Attempt]) -> dict[str, str]:
    """{task_id: task name} of the attempts' tasks, one listing."""
    ids = list({a.task_id for a in attempts})
    if not ids:
        return {}
    # by id alone: with the dataset too, SQLite walks the dataset's index (a
    # million rows) to keep creation order; the rows are checked here instead
    page = await store.list_tasks(TaskFilter(task_ids=ids), ListOptions(keys=("name", "dataset_id")))
    return {row["task_id"]: row["name"] for row in page.rows if row["dataset_id"] == dataset_id}


@dataclass
class NameForecast:
    name: str
    left: int
    sampled: int
    mean_hours: float | None
    cpu: float
    gpu: float

    @property
    def cpu_hours(self) -> float | None:
        return None if self.mean_hours is None else self.left * self.mean_hours * self.cpu

    @property
    def gpu_hours(self) -> float | None:
        return None if self.mean_hours is None else self.left * self.mean_hours * self.gpu

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "tasks_left": self.left, "sampled": self.sampled, "mean_hours": self.mean_hours,
                "cpu": self.cpu, "gpu": self.gpu, "cpu_hours_left": self.cpu_hours,
                "gpu_hours_left": self.gpu_hours}


@dataclass
class Forecast:
    dataset_id: str
    tasks_left: int
    tasks_complete: int
    window_hours: float
    completed_in_window: int
    names: list[NameForecast] = field(default_factory=list)
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))

    @property
    def rate_per_hour(self) -> float:
        return self.completed_in_window / self.window_hours

    @property
    def eta_hours(self) -> float | None:
        if self.tasks_left == 0:
            return 0.0
        return self.tasks_left / self.rate_per_hour if self.rate_per_hour > 0 else None

    def hours_left(self, resource: str) -> float:
        """CPU or GPU hours left over the names with a sample."""
        return sum((n.cpu_hours if resource == "cpu" else n.gpu_hours) or 0.0 for n in self.names)

    def to_json(self) -> dict[str, Any]:
        eta = self.eta_hours
        return {
            "dataset_id": self.dataset_id, "tasks_left": self.tasks_left, "tasks_complete": self.tasks_complete,
            "window_hours": self.window_hours, "completed_in_window": self.completed_in_window,
            "rate_per_hour": self.rate_per_hour, "eta_hours": eta,
            "eta": None if eta is None else (self.now + datetime.timedelta(hours=eta)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cpu_hours_left": self.hours_left("cpu"), "gpu_hours_left": self.hours_left("gpu"),
            "tasks_left_unestimated": sum(n.left for n in self.names if n.mean_hours is None),
            "by_name": [n.to_json() for n in self.names],
        }


async def forecast(store: Store, dataset_id: str, *, window_hours: float = WINDOW_HOURS,
                   counts: dict[str, dict[str, int]] | None = None) -> Forecast:
    """The dataset's forecast (the dataset must exist; the caller checks rights).
    ``counts``: the dataset's task counts by name and status when the caller
    has them already (the website's shared snapshot), else they are read."""
    if counts is None:
        counts = await store.task_counts_by_name_status(dataset_id)
    sample = await store.recent_attempts(dataset_id, status="complete", limit=SAMPLE)
    names = await names_of(store, dataset_id, sample)
    per_name: dict[str, list[Attempt]] = {}
    for attempt in sample:
        per_name.setdefault(names.get(attempt.task_id, ""), []).append(attempt)
    now = datetime.datetime.now(datetime.timezone.utc)
    since = (now - datetime.timedelta(hours=window_hours)).replace(tzinfo=None).strftime(TIME_FORMAT)
    done = await store.count_attempts_ended(dataset_id, since, status="complete")
    result = Forecast(dataset_id, tasks_left=0, tasks_complete=0, window_hours=window_hours,
                      completed_in_window=done, now=now)
    for name, by_status in counts.items():
        left = sum(n for status, n in by_status.items() if status in LEFT)
        result.tasks_left += left
        result.tasks_complete += by_status.get("complete", 0)
        runs = [(h, a) for a in per_name.get(name, []) if (h := attempt_hours(a)) is not None]
        result.names.append(NameForecast(
            name, left, len(runs), statistics.fmean(h for h, _ in runs) if runs else None,
            cpu=statistics.fmean(number(a.resources.get("cpu"), 1.0) for _, a in runs) if runs else 1.0,
            gpu=statistics.fmean(number(a.resources.get("gpu"), 0.0) for _, a in runs) if runs else 0.0))
    return result


async def install_hours_left(store: Store) -> dict[str, Any]:
    """CPU and GPU hours left over the processing datasets (at most MAX_DATASETS)."""
    page = await store.list_datasets(DatasetFilter(status=["processing"]),
                                     ListOptions(keys=("dataset_id",), limit=MAX_DATASETS))
    totals = {"datasets": 0, "tasks_left": 0, "cpu_hours_left": 0.0, "gpu_hours_left": 0.0,
              "tasks_left_unestimated": 0, "capped": page.next_cursor is not None}
    for row in page.rows:
        one = (await forecast(store, row["dataset_id"])).to_json()
        totals["datasets"] += 1
        for key in ("tasks_left", "cpu_hours_left", "gpu_hours_left", "tasks_left_unestimated"):
            totals[key] += one[key]
    return totals
