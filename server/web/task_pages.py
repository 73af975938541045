"""Job list and page, task list and page (reference §8 ``/dataset/{id}/job...``, ``/dataset/{id}/task...``).

Lists are pages of an index-ordered query with a cursor (``after``), never
the whole dataset. Reset / hard reset / suspend of jobs and tasks go through
the ``job_status`` and ``task_status`` actions, the same checks as the API.
"""
from __future__ import annotations

import datetime
import time
from typing import TypeVar
from urllib.parse import urlencode

from aiohttp import web

from common import states
from server.keys import STORE
from server.store import Dataset, Job, JobFilter, ListOptions, Task, TaskFilter
from server.web.dataset_pages import NAME_COLUMNS, counts
from server.web.framework import (
    PageError, PageRoutes, can_write, dataset_for, form_data, multi, queue_action, render,
    state,
)

routes = PageRoutes()
PAGE_SIZE = 100
ITEM_ACTIONS = {"reset": "Reset", "hard_reset": "Hard reset", "suspend": "Suspend"}
KIND_ACTION = {"job": "job_status", "task": "task_status"}
TASK_LIST_KEYS = ("task_id", "job_id", "job_index", "task_index", "name", "status", "failures", "walltime",
                  "walltime_err", "site")


def _statuses(request: web.Request, allowed: tuple[str, ...], kind: str) -> list[str]:
    statuses = multi(request, "status")
    for status in statuses:
        if status not in allowed:
            raise PageError(400, f"unknown {kind} status {status!r}; choose from {', '.join(allowed)}")
    return statuses


Found = TypeVar("Found", Job, Task)


def in_dataset(found: Found | None, dataset: Dataset, what: str) -> Found:
    """The job or task when it belongs to the dataset in the URL (else 404: ids
    of another dataset must not be readable through this one's rights)."""
    if found is None or found.dataset_id != dataset.dataset_id:
        raise PageError(404, f"{what} not found in this dataset")
    return found


def _next(request: web.Request, cursor: str | None) -> str | None:
    if not cursor:
        return None
    params = [(k, v) for k, v in request.query.items() if k != "after"]
    return urlencode([*params, ("after", cursor)])


@routes.page("/dataset/{key}/job")
async def job_list(request: web.Request) -> web.StreamResponse:
    dataset = await dataset_for(request, request.match_info["key"])
    statuses = _statuses(request, states.JOB_STATUSES, "job")
    page = await request.app[STORE].list_jobs(JobFilter(dataset_id=dataset.dataset_id, status=statuses or None),
                                              ListOptions(limit=PAGE_SIZE, after=request.query.get("after")))
    return render(request, "job_list.html", dataset=dataset, rows=page.rows, next_query=_next(request, page.next_cursor),
                  statuses=states.JOB_STATUSES, selected=statuses, writable=await can_write(request, dataset),
                  actions=ITEM_ACTIONS)


@routes.page("/dataset/{key}/job/{job_id}")
async def job_page(request: web.Request) -> web.StreamResponse:
    dataset = await dataset_for(request, request.match_info["key"])
    store = request.app[STORE]
    job = in_dataset(await store.get_job(request.match_info["job_id"]), dataset, "job")
    tasks = (await store.list_tasks(TaskFilter(job_id=job.job_id), ListOptions(keys=TASK_LIST_KEYS))).rows
    return render(request, "job.html", dataset=dataset, job=job, tasks=tasks,
                  writable=await can_write(request, dataset), actions=ITEM_ACTIONS,
                  message=request.query.get("message", ""))


async def _item_action(request: web.Request, kind: str) -> web.StreamResponse:
    """Reset / hard reset / suspend one job or task (``kind``) through its status action."""
    dataset = await dataset_for(request, request.match_info["key"], "write")
    action = (await form_data(request)).get("action", "")
    item_id = request.match_info[f"{kind}_id"]
    store = request.app[STORE]
    found = await (store.get_job(item_id) if kind == "job" else store.get_task(item_id))
    in_dataset(found, dataset, kind)
    await queue_action(request, f"{kind}_status", {"dataset_id": dataset.dataset_id, "action": action,
                                                   f"{kind}_ids": [item_id]})
    state(request.app).snapshots.mark_stale(dataset.dataset_id)
    raise web.HTTPSeeOther(f"/dataset/{dataset.dataset_id}/{kind}/{item_id}?message={action}+requested")


@routes.page("/dataset/{key}/job/{job_id}/action", method="POST")
async def job_action(request: web.Request) -> web.StreamResponse:
    return await _item_action(request, "job")


@routes.page("/dataset/{key}/{kind:job|task}/action", method="POST")
async def page_action(request: web.Request) -> web.StreamResponse:
    """Reset / hard reset / suspend every job or task listed on a page (the
    ``id`` fields); ids of other datasets are ignored by the action itself."""
    dataset = await dataset_for(request, request.match_info["key"], "write")
    kind = request.match_info["kind"]
    form = await request.post()
    ids = [v for v in form.getall("id", []) if isinstance(v, str)]
    if not ids or len(ids) > PAGE_SIZE:
        raise PageError(400, f"select between 1 and {PAGE_SIZE} {kind}s, got {len(ids)}")
    action = str(form.get("action", ""))
    await queue_action(request, KIND_ACTION[kind], {"dataset_id": dataset.dataset_id, "action": action,
                                                   f"{kind}_ids": ids})
    state(request.app).snapshots.mark_stale(dataset.dataset_id)
    back = str(form.get("back", ""))
    target = back if back.startswith(f"/dataset/{dataset.dataset_id}/{kind}") else f"/dataset/{dataset.dataset_id}"
    raise web.HTTPSeeOther(target)


@routes.page("/dataset/{key}/task")
async def task_list(request: web.Request) -> web.StreamResponse:
    """Without filters: the counts by name and status (links into filtered lists)."""
    dataset = await dataset_for(request, request.match_info["key"])
    store = request.app[STORE]
    statuses = _statuses(request, states.TASK_STATUSES, "task")
    names = multi(request, "name")
    if not statuses and not names:
        snapshot, _ = await state(request.app).snapshots.get(dataset.dataset_id,
                                                             lambda: counts(store, dataset.dataset_id))
        return render(request, "task_counts.html", dataset=dataset, by_name=snapshot["by_name"], columns=NAME_COLUMNS)
    page = await store.list_tasks(TaskFilter(dataset_id=dataset.dataset_id, status=statuses or None,
                                             name=names or None),
                                  ListOptions(keys=TASK_LIST_KEYS, limit=PAGE_SIZE, after=request.query.get("after")))
    return render(request, "task_list.html", dataset=dataset, rows=page.rows, statuses=states.TASK_STATUSES,
                  selected=statuses, names=names, next_query=_next(request, page.next_cursor),
                  writable=await can_write(request, dataset), actions=ITEM_ACTIONS)


def _paced(task: Task) -> str:
    """When a paced retry may be queued, in words (empty when it may now)."""
    if task.not_before is None or task.status != "waiting":
        return ""
    when = datetime.datetime.fromtimestamp(task.not_before, datetime.timezone.utc)
    left = max(task.not_before - time.time(), 0.0)
    return f"{when.strftime('%Y-%m-%d %H:%M:%S')} UTC (in {left:.0f} s)"


@routes.page("/dataset/{key}/task/{task_id}")
async def task_page(request: web.Request) -> web.StreamResponse:
    dataset = await dataset_for(request, request.match_info["key"])
    store = request.app[STORE]
    task = in_dataset(await store.get_task(request.match_info["task_id"]), dataset, "task")
    deps = []
    if task.depends:
        found = {row["task_id"]: row for row in (await store.list_tasks(
            TaskFilter(task_ids=task.depends), ListOptions(keys=("dataset_id", "name", "status", "job_index")))).rows}
        deps = [found.get(dep, {"task_id": dep, "dataset_id": "", "name": "(missing)", "status": ""})
                for dep in task.depends]
    logs = await store.task_logs(task.task_id, group=False, order="desc", num=50)
    stat_page = await store.list_task_stats(task_id=task.task_id, last=True)
    return render(request, "task.html", dataset=dataset, task=task, fields=task.to_doc(), deps=deps,
                  paced=_paced(task),
                  attempts=await store.get_attempts(task.task_id),
                  logs=[(log.log_id, log.name, log.timestamp, log.attempt, len(log.data)) for log in logs],
                  last_stats=stat_page.rows[-1] if stat_page.rows else None,
                  writable=await can_write(request, dataset), actions=ITEM_ACTIONS,
                  message=request.query.get("message", ""))


@routes.page("/dataset/{key}/task/{task_id}/action", method="POST")
async def task_action(request: web.Request) -> web.StreamResponse:
    return await _item_action(request, "task")
