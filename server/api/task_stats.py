"""Task statistics documents (IceProd's ``task_stats``, reference §4.3).

A pilot posts one document per attempt; the bulk route streams a dataset's
documents one JSON object per line, page by page, so a dataset with millions
of stats never has to fit in one reply (or in the server's memory).
"""
from __future__ import annotations

import json

from aiohttp import web

from server.api.errors import not_found
from server.api.params import bool_param, int_param, json_reply, list_options, page_headers
from common.protocol import TaskStats
from server.api.routing import PILOT_ROLES, ApiRoutes, QueryParam
from server.keys import BODY, STORE
from server.scheduling import reports
from server.store import ListOptions, Task

routes = ApiRoutes("task_stats")
BULK_PAGE = 1000


async def _task(request: web.Request, dataset_id: str | None = None) -> Task:
    task_id = request.match_info["task_id"]
    task = await request.app[STORE].get_task(task_id)
    if task is None or (dataset_id is not None and task.dataset_id != dataset_id):
        raise not_found(f"task {task_id} not found")
    return task


@routes.post("/tasks/{task_id}/task_stats", summary="store the statistics of an attempt", roles=PILOT_ROLES,
             pilot=True, body=TaskStats, responses={201: "created: {\"result\": task_stat_id}"})
async def post_stats(request: web.Request) -> web.Response:
    stats = request[BODY].to_json()  # checked as protocol.TaskStats; IceProd's other keys kept as sent
    stat_id = await reports.record_stats(request.app[STORE], request.match_info["task_id"], stats)
    return json_reply({"result": stat_id}, status=201)


@routes.get("/datasets/{dataset_id}/bulk/task_stats", summary="every stats document of the dataset, one JSON per line",
            right="read",
            query=[QueryParam("last", "only the newest document of each task", {"type": "boolean"}),
                   QueryParam("keys", "fields to return, pipe-separated"),
                   QueryParam("after", "resume after this cursor (X-Next-Cursor of a previous page)"),
                   QueryParam("buffer_size", "documents read per round", {"type": "integer", "minimum": 1})])
async def bulk_stats(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    dataset_id = request.match_info["dataset_id"]
    last = bool(bool_param(request, "last", False))
    size = int_param(request, "buffer_size", BULK_PAGE, minimum=1, maximum=100_000) or BULK_PAGE
    base = list_options(request)
    opts = ListOptions(keys=base.keys, limit=size, after=base.after)
    page = await store.list_task_stats(dataset_id=dataset_id, last=last, opts=opts)  # bad cursor: 400 before streaming
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    while True:
        if page.rows:
            await response.write("".join(json.dumps(row, separators=(",", ":"), default=str) + "\n"
                                         for row in page.rows).encode())
        if page.next_cursor is None:
            break
        opts = ListOptions(keys=base.keys, limit=size, after=page.next_cursor)
        page = await store.list_task_stats(dataset_id=dataset_id, last=last, opts=opts)
    await response.write_eof()
    return response


@routes.get("/datasets/{dataset_id}/tasks/{task_id}/task_stats", summary="a task's stats as {task_stat_id: doc}",
            right="read",
            query=[QueryParam("last", "only the newest document", {"type": "boolean"}),
                   QueryParam("keys", "fields to return, pipe-separated"),
                   QueryParam("limit", "page size", {"type": "integer", "minimum": 1}),
                   QueryParam("after", "cursor from X-Next-Cursor")])
async def task_stats(request: web.Request) -> web.Response:
    task = await _task(request, request.match_info["dataset_id"])
    page = await request.app[STORE].list_task_stats(task_id=task.task_id, last=bool(bool_param(request, "last", False)),
                                                    opts=list_options(request))
    return json_reply({row["task_stat_id"]: row for row in page.rows}, headers=page_headers(page.next_cursor))


@routes.get("/datasets/{dataset_id}/tasks/{task_id}/task_stats/{task_stat_id}", summary="one stats document",
            right="read")
async def one_stat(request: web.Request) -> web.Response:
    task = await _task(request, request.match_info["dataset_id"])
    stat_id = request.match_info["task_stat_id"]
    stat = await request.app[STORE].get_task_stat(stat_id)
    if stat is None or stat.task_id != task.task_id:
        raise not_found(f"task_stat {stat_id} not found")
    return json_reply(stat.to_doc())
