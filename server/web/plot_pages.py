"""Dataset plots: runtime and peak memory per task name against the requested
memory, progress over time, failures by class over time.

Everything is computed from stored timestamps with BOUNDED reads: the most
recently changed tasks (one indexed, limited query) and their attempts, and
the newest completions. The page says how many it looked at, so a dataset of
a million tasks costs the same as one of a thousand.
"""
from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from aiohttp import web

from common.resources import RequirementError, parse_requirement
from server.keys import STORE
from server.store import Attempt, ListOptions, Store, TaskFilter
from server.store.records import TIME_FORMAT
from server.web import plots
from server.web.framework import PageRoutes, dataset_for, render, state

routes = PageRoutes()
TASK_SAMPLE = 400
ATTEMPT_TASKS = 200
COMPLETIONS = 2000


def epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


def bucket_series(events: list[tuple[float, str]], buckets: int = 24) -> dict[str, list[tuple[float, float]]]:
    """Counts per label in equal time buckets (zeros included, so lines drop to 0)."""
    if not events:
        return {}
    start, end = min(t for t, _ in events), max(t for t, _ in events)
    width = max((end - start) / buckets, 1.0)
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    for when, label in events:
        counts[label][min(int((when - start) / width), buckets - 1)] += 1
    return {label: [(start + (i + 0.5) * width, float(c)) for i, c in enumerate(values)]
            for label, values in sorted(counts.items())}


def progress_series(completed: list[float], total_complete: int) -> dict[str, list[tuple[float, float]]]:
    """Cumulative completions: the newest ``len(completed)`` completion times
    end at ``total_complete``, so the curve is exact for that window."""
    times = sorted(completed)
    base = total_complete - len(times)
    return {"complete tasks": [(t, float(base + i + 1)) for i, t in enumerate(times)]}


def per_name_charts(tasks: list[dict[str, Any]], attempts: dict[str, list[Attempt]]) -> list[dict[str, Any]]:
    runtimes: dict[str, list[float]] = defaultdict(list)
    memory: dict[str, list[float]] = defaultdict(list)
    requested: dict[str, float] = {}
    for task in tasks:
        name = task["name"]
        try:
            req = parse_requirement("memory", (task.get("requirements") or {}).get("memory"))
        except RequirementError:
            req = None  # not readable: nothing to draw
        if req is not None:
            requested[name] = max(requested.get(name, 0.0), float(req))
        for attempt in attempts.get(task["task_id"], []):
            if attempt.status != "complete":
                continue
            if attempt.time_used is not None:
                runtimes[name].append(attempt.time_used / 3600)
            peak = attempt.resources_used.get("memory")
            if isinstance(peak, (int, float)):
                memory[name].append(float(peak))
    charts = []
    for name in sorted(set(runtimes) | set(memory) | set(requested)):
        charts.append({"name": name,
                       "runtime": plots.histogram(runtimes.get(name, []), title=f"{name}: runtime",
                                                  x_label="hours"),
                       "memory": plots.histogram(memory.get(name, []), title=f"{name}: peak memory",
                                                 x_label="GB", marker=requested.get(name),
                                                 marker_label=f"requested {requested.get(name, 0):g} GB")})
    return charts


async def plot_data(store: Store, dataset_id: str) -> dict[str, Any]:
    recent = (await store.list_tasks(
        TaskFilter(dataset_id=dataset_id),
        ListOptions(keys=("name", "status", "failures", "requirements", "attempts"), limit=TASK_SAMPLE,
                    sort=[("status_changed", -1)]))).rows
    attempts: dict[str, list[Attempt]] = {}
    for task in [t for t in recent if t.get("attempts")][:ATTEMPT_TASKS]:
        attempts[task["task_id"]] = await store.get_attempts(task["task_id"])
    failures = [(when, a.failure_class or "unknown") for found in attempts.values() for a in found
                if a.status in ("reset", "failed", "lost") and (when := epoch(a.end)) is not None]
    completions = (await store.list_tasks(
        TaskFilter(dataset_id=dataset_id, status=["complete"]),
        ListOptions(keys=("status_changed",), limit=COMPLETIONS, sort=[("status_changed", -1)]))).rows
    total_complete = (await store.task_counts_by_status(TaskFilter(dataset_id=dataset_id))).get("complete", 0)
    done = [t for row in completions if (t := epoch(row.get("status_changed"))) is not None]
    return {"progress": plots.line_chart(progress_series(done, total_complete), title="Progress",
                                         y_label="complete tasks"),
            "failures": plots.line_chart(bucket_series(failures), title="Failures by class",
                                         y_label="failed attempts"),
            "charts": per_name_charts(recent, attempts), "sampled": len(recent), "with_attempts": len(attempts),
            "completions": len(done)}


@routes.page("/dataset/{key}/plots")
async def dataset_plots(request: web.Request) -> web.StreamResponse:
    """Shared like the dataset page's counts: the bounded reads still sort a
    huge dataset's tasks, so many viewers share one computation."""
    dataset = await dataset_for(request, request.match_info["key"])
    store = request.app[STORE]
    data, age = await state(request.app).snapshots.get(f"plots:{dataset.dataset_id}",
                                                       lambda: plot_data(store, dataset.dataset_id))
    return render(request, "plots.html", dataset=dataset, age=round(age), **data)
