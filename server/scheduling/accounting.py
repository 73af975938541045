"""Accounting (issue 16.5): wall, core and GPU hours by dataset, user, group or
site per day, from the attempts that ended in a window.

The attempts are read in ``attempts_ended`` pages (index on ``end``), so a
window of any size is walked in bounded memory; the sums per (day, key) are
small. Every finished attempt counts, failed ones too: they used the
resources. Hours are the pilot's wall time (``time_used``, else end − start);
core-hours multiply them by the cores the attempt was claimed with, GPU-hours
by its GPUs. A caller that is not an admin sees only datasets it may read.
"""
from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass
from typing import Any, Iterable

from server.auth import Identity, readable_ids
from server.scheduling.forecast import number, attempt_hours
from server.scheduling.task_filter import parse_time
from server.store import Dataset, InvalidArgumentError, Store
from server.store.records.base import TIME_FORMAT

BY = ("dataset", "user", "group", "site")
PAGE = 5000
MAX_DAYS = 400
COLUMNS = ("day", "key", "wall_hours", "core_hours", "gpu_hours", "attempts")


@dataclass
class Window:
    since: str
    until: str

    @classmethod
    def parse(cls, since: str | None, until: str | None, *, default_days: int = 30) -> "Window":
        """ISO dates/times; ``until`` defaults to now, ``since`` to ``default_days`` before."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        end = parse_time(until, "until") if until else now.strftime(TIME_FORMAT)
        end_dt = datetime.datetime.strptime(end, TIME_FORMAT)
        start = parse_time(since, "since") if since else \
            (end_dt - datetime.timedelta(days=default_days)).strftime(TIME_FORMAT)
        if start >= end:
            raise InvalidArgumentError("since must be before until")
        if end_dt - datetime.datetime.strptime(start, TIME_FORMAT) > datetime.timedelta(days=MAX_DAYS):
            raise InvalidArgumentError(f"the window from since to until is longer than {MAX_DAYS} days")
        return cls(start, end)


@dataclass
class Row:
    day: str
    key: str
    wall_hours: float = 0.0
    core_hours: float = 0.0
    gpu_hours: float = 0.0
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, "key": self.key, "wall_hours": round(self.wall_hours, 6),
                "core_hours": round(self.core_hours, 6), "gpu_hours": round(self.gpu_hours, 6),
                "attempts": self.attempts}


def _key(by: str, dataset: Dataset, site: str) -> str:
    if by == "dataset":
        return str(dataset.dataset)
    if by == "user":
        return dataset.username
    if by == "group":
        return dataset.group
    return site or "(none)"


async def usage(store: Store, by: str, window: Window, identity: Identity) -> list[Row]:
    """Rows per (day, key), days ascending, keys ascending, over the datasets
    ``identity`` may read."""
    if by not in BY:
        raise InvalidArgumentError(f"by must be one of {', '.join(BY)}, got {by!r}")
    datasets: dict[str, Dataset | None] = {}
    rows: dict[tuple[str, str], Row] = {}
    after: str | None = None
    while True:
        attempts, after = await store.attempts_ended(window.since, window.until, after=after, limit=PAGE)
        new = sorted({a.dataset_id for a in attempts} - set(datasets))
        allowed = await readable_ids(store, identity, new)
        for dataset_id in new:
            datasets[dataset_id] = await store.get_dataset(dataset_id) if dataset_id in allowed else None
        for attempt in attempts:
            dataset = datasets.get(attempt.dataset_id)
            hours = attempt_hours(attempt)
            if dataset is None or hours is None or not attempt.end:
                continue
            day, key = attempt.end[:10], _key(by, dataset, attempt.site)
            row = rows.setdefault((day, key), Row(day, key))
            row.wall_hours += hours
            row.core_hours += hours * number(attempt.resources.get("cpu"), 1.0)
            row.gpu_hours += hours * number(attempt.resources.get("gpu"), 0.0)
            row.attempts += 1
        if after is None:
            break
    return [rows[k] for k in sorted(rows)]


def to_csv(by: str, rows: Iterable[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", by, *COLUMNS[2:]])
    for row in rows:
        doc = row.to_json()
        writer.writerow([doc[c] for c in COLUMNS])
    return out.getvalue()


def totals(rows: Iterable[Row]) -> dict[str, dict[str, float]]:
    """{key: summed wall/core/gpu hours and attempts} over the days."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        t = out.setdefault(row.key, {"wall_hours": 0.0, "core_hours": 0.0, "gpu_hours": 0.0, "attempts": 0})
        t["wall_hours"] += row.wall_hours
        t["core_hours"] += row.core_hours
        t["gpu_hours"] += row.gpu_hours
        t["attempts"] += row.attempts
    return out
