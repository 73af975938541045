"""The dataset list and the dataset page (reference §8 ``/dataset``, ``/dataset/{id or number}``).

The dataset page reads counts and indexes only (job/task counts by status,
counts by task name, per-name statistics, the config), so it renders as
fast with a million tasks as with ten. Its live numbers come from
``/dataset/{id}/status.json``, polled by the page's script.
"""
from __future__ import annotations

import asyncio
import math
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from common import states
from common.resources import RequirementError, is_macro, parse_requirement
from server.auth import readable_ids
from server.keys import MATCHABLE, SETTINGS, STORE
from server.scheduling.backlog import materialization_state
from server.store import Dataset, ListOptions, Store
from server.web.production_pages import dataset_extras
from server.web.framework import (
    PageError, PageRoutes, can_write, dataset_for, form_data, json_page, multi, queue_action, render, session_of,
    state,
)

routes = PageRoutes()
PAGE_SIZE = 50
LIST_KEYS = ("dataset", "username", "group", "status", "description", "truncated", "start_date")
STATUS_FILTERS = (*states.DATASET_STATUSES, "truncated")
"""``truncated`` is a flag, not a status: IceProd's website sent it to the API
and got a 400 (reference §11); here it filters on the flag."""
NAME_COLUMNS = ("idle", "waiting", "queued", "processing", "complete", "failed", "suspended")
STAT_FIELDS = (("count", 0), ("gpu", 1), ("avg_hrs", 3), ("stddev_hrs", 3), ("min_hrs", 3), ("max_hrs", 3),
               ("total_hrs", 2), ("total_err_hrs", 2), ("efficiency", 1))
"""Columns of the completion statistics and their decimals (efficiency shown in %)."""
DATASET_ACTIONS = {"reset": "Reset", "hard_reset": "Hard reset", "suspend": "Suspend", "truncate": "Truncate"}


@routes.page("/")
async def home(request: web.Request) -> web.StreamResponse:
    return render(request, "index.html")


def _matches(row: dict[str, Any], statuses: list[str], groups: list[str], users: list[str]) -> bool:
    if statuses and not (row["status"] in statuses or ("truncated" in statuses and row.get("truncated"))):
        return False
    return (not groups or row["group"] in groups) and (not users or row["username"] in users)


@routes.page("/dataset")
async def dataset_list(request: web.Request) -> web.StreamResponse:
    """Newest first. Datasets number in the thousands, not millions, so the
    list is read once (projected) and filtered here; read rights are checked
    for all of them in ONE query, never per row."""
    statuses, groups, users = multi(request, "status"), multi(request, "group"), multi(request, "user")
    unknown = sorted(set(statuses) - set(STATUS_FILTERS))
    if unknown:
        raise PageError(400, f"unknown dataset status {unknown[0]!r}; choose from {', '.join(STATUS_FILTERS)}")
    before = request.query.get("before", "")
    if before and not before.isdigit():
        raise PageError(400, f"'before' must be a dataset number, got {before!r}")
    store = request.app[STORE]
    rows = (await store.list_datasets(opts=ListOptions(keys=LIST_KEYS))).rows
    identity = session_of(request).identity
    readable = await readable_ids(store, identity, [r["dataset_id"] for r in rows])
    rows = [r for r in rows if r["dataset_id"] in readable]
    all_groups = sorted({r["group"] for r in rows})
    all_users = sorted({r["username"] for r in rows})
    rows.sort(key=lambda r: r["dataset"], reverse=True)
    shown = [r for r in rows if _matches(r, statuses, groups, users) and (not before or r["dataset"] < int(before))]
    page, more = shown[:PAGE_SIZE], len(shown) > PAGE_SIZE
    next_query = None
    if more:
        params = [("status", s) for s in statuses] + [("group", g) for g in groups] + [("user", u) for u in users]
        next_query = urlencode([*params, ("before", str(page[-1]["dataset"]))])
    return render(request, "dataset_list.html", rows=page, next_query=next_query, statuses=STATUS_FILTERS,
                  groups=all_groups, users=all_users, selected={"status": statuses, "group": groups, "user": users},
                  total=len(shown))


def task_types(config: dict[str, Any] | None) -> dict[str, str]:
    """CPU or GPU per task name, read from the config (not from a million tasks)."""
    out: dict[str, str] = {}
    for index, task in enumerate((config or {}).get("tasks") or []):
        if not isinstance(task, dict):
            continue
        gpu = (task.get("requirements") or {}).get("gpu")
        try:
            uses_gpu = parse_requirement("gpu", gpu) > 0
        except RequirementError:
            uses_gpu = is_macro(gpu)  # resolved per job: it may well ask for GPUs
        out[str(task.get("name") or index)] = "GPU" if uses_gpu else "CPU"
    return out


async def counts(store: Store, dataset_id: str) -> dict[str, Any]:
    """The expensive part of the page (scans on a huge dataset), shared through
    :class:`~server.web.snapshots.Snapshots`. Task counts by status are the
    sums of the counts by name, so the tasks are counted once, not twice."""
    # Three reads on the store's reader threads at once: the first view waits
    # for the slowest scan, not for their sum.
    by_name, jobs, stats = await asyncio.gather(store.task_counts_by_name_status(dataset_id),
                                                store.job_counts_by_status(dataset_id),
                                                store.task_stats_by_name(dataset_id))
    tasks: Counter[str] = Counter()
    for by_status in by_name.values():
        tasks.update(by_status)
    return {"jobs": jobs, "tasks": dict(tasks), "by_name": by_name, "stats": stats}


async def live_status(request: web.Request, dataset: Dataset) -> dict[str, Any]:
    """Everything on the dataset page that changes while it runs: the dataset's
    own fields fresh, the counts from the shared snapshot (with its age)."""
    store = request.app[STORE]
    current = await store.get_dataset(dataset.dataset_id) or dataset
    action = await store.latest_action("dataset_status", dataset.dataset_id)
    snapshot, age = await state(request.app).snapshots.get(
        dataset.dataset_id, lambda: counts(store, dataset.dataset_id))
    return {
        "dataset_status": current.status,
        "truncated": current.truncated,
        "jobs": snapshot["jobs"], "tasks": snapshot["tasks"], "by_name": snapshot["by_name"],
        "stats": snapshot["stats"], "counts_age_s": round(age, 1),
        "action": None if action is None else {
            "status": action.status, "progress": action.progress, "error": action.error_message,
            "action": action.payload.get("action", "")},
    }


@routes.page("/dataset/{key}")
async def dataset_page(request: web.Request) -> web.StreamResponse:
    dataset = await dataset_for(request, request.match_info["key"])
    store = request.app[STORE]
    live = await live_status(request, dataset)
    config = await store.get_config(dataset.dataset_id)
    versions = await store.list_config_versions(dataset.dataset_id)
    types = task_types(config.config if config else None)
    names = list(live["by_name"]) or list(types)
    extras = await dataset_extras(store, dataset.dataset_id, live["by_name"])
    materialized = await materialization_state(store, request.app[SETTINGS], dataset)
    matchable = request.app.get(MATCHABLE)
    unmatchable = matchable.snapshot.for_dataset(dataset.dataset_id) if matchable else []
    return render(request, "dataset.html", dataset=dataset, unmatchable=unmatchable, live=live, **extras, names=names, types=types, stats=live["stats"],
                  materialized=materialized,
                  versions=[(v.version, v.created, v.author, v.comment) for v in versions],
                  writable=await can_write(request, dataset), task_statuses=states.TASK_STATUSES,
                  job_statuses=states.JOB_STATUSES, name_columns=NAME_COLUMNS, stat_fields=STAT_FIELDS, actions=DATASET_ACTIONS,
                  message=request.query.get("message", ""))


@routes.page("/dataset/{key}/status.json", as_json=True)
async def dataset_status_json(request: web.Request) -> web.StreamResponse:
    dataset = await dataset_for(request, request.match_info["key"])
    return json_page(await live_status(request, dataset))


@routes.page("/dataset/{key}/priority", method="POST")
async def set_priority(request: web.Request) -> web.StreamResponse:
    dataset = await dataset_for(request, request.match_info["key"], "write")
    raw = (await form_data(request)).get("priority", "")
    try:
        priority = float(raw)
    except ValueError:
        raise PageError(400, f"priority must be a number, got {raw!r}") from None
    if not math.isfinite(priority) or priority < 0:
        raise PageError(400, f"priority must be a finite number >= 0, got {raw!r}")
    await request.app[STORE].update_dataset(dataset.dataset_id, priority=priority)
    raise web.HTTPSeeOther(f"/dataset/{dataset.dataset_id}?message=priority+set")


@routes.page("/dataset/{key}/action", method="POST")
async def dataset_action(request: web.Request) -> web.StreamResponse:
    """Reset / hard reset / suspend go through the ``dataset_status`` action (chunked,
    with progress); truncate is one store call."""
    dataset = await dataset_for(request, request.match_info["key"], "write")
    action = (await form_data(request)).get("action", "")
    if action not in DATASET_ACTIONS:
        raise PageError(400, f"unknown action {action!r}; choose from {', '.join(DATASET_ACTIONS)}")
    if action == "truncate":
        await request.app[STORE].truncate_dataset(dataset.dataset_id)
    else:
        await queue_action(request, "dataset_status", {"dataset_id": dataset.dataset_id, "action": action})
    state(request.app).snapshots.mark_stale(dataset.dataset_id)
    raise web.HTTPSeeOther(f"/dataset/{dataset.dataset_id}?message={action}+requested")
