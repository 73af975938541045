"""Logs over HTTP: IceProd's routes (reference §4.3) plus live streaming from pilots.

While a task runs, its pilot creates a log for the running attempt
(``POST /tasks/{task_id}/logs``) and appends chunks to it
(``PATCH /logs/{log_id}``), both fenced by the claim's ``instance_id``
(:mod:`server.scheduling.logs`). Reading one log of a dataset needs the read
right (IceProd wanted write).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from server.api.errors import bad_request, not_found
from server.api.params import bool_param, int_param, json_reply, list_options, page_headers, pipe_list
from server.api.routing import PILOT_ROLES, SERVICE_ROLES, ApiRoutes, QueryParam, caller
from server.keys import BODY, LOG_INDEX, STORE
from server.scheduling import logs
from server.store import LogFilter
from server.store.query import project

routes = ApiRoutes("logs")
USER_ROLES = {"admin", "user"}
DEFAULT_KEYS = ("name", "data", "timestamp", "task_id", "dataset_id")

NAME = {"type": "string", "minLength": 1, "maxLength": 200}
IDENT = {"type": "string", "minLength": 1, "maxLength": 64}
DATA = {"type": "string"}
POST_LOG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"data": DATA, "name": NAME, "dataset_id": IDENT, "task_id": IDENT, "instance_id": IDENT,
                   "attempt": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
    "required": ["data"],
    "additionalProperties": False,
}
DATASET_LOG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"data": DATA, "name": NAME, "task_id": IDENT, "dataset_id": IDENT},
    "required": ["data"],
    "additionalProperties": False,
}
STREAM_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"instance_id": IDENT, "name": NAME, "data": DATA},
    "required": ["instance_id", "name"],
    "additionalProperties": False,
}
APPEND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"instance_id": IDENT, "append": DATA},
    "required": ["append"],
    "additionalProperties": False,
}
LIST_QUERY = [
    QueryParam("from", "logs at or after this time (IceProd time string)"),
    QueryParam("to", "logs at or before this time"),
    QueryParam("name", "log names, pipe-separated"),
    QueryParam("dataset_id", "logs of this dataset"), QueryParam("task_id", "logs of this task"),
    QueryParam("keys", "fields to return, pipe-separated"),
    QueryParam("limit", "page size", {"type": "integer", "minimum": 1}),
    QueryParam("after", "cursor from the X-Next-Cursor header of the previous page"),
]
TASK_LOG_QUERY = [
    QueryParam("num", "at most this many logs", {"type": "integer", "minimum": 1}),
    QueryParam("group", "only the newest log of each name", {"type": "boolean"}),
    QueryParam("order", "asc | desc (by time)", {"enum": ["asc", "desc"]}),
    QueryParam("keys", "fields to return, pipe-separated"),
]


def _log_filter(request: web.Request, dataset_id: str | None = None) -> LogFilter:
    return LogFilter(dataset_id=dataset_id or request.query.get("dataset_id") or None,
                     task_id=request.query.get("task_id") or None, name=pipe_list(request, "name"),
                     from_time=request.query.get("from") or None, to_time=request.query.get("to") or None)


@routes.get("/logs", summary="logs as {log_id: doc}", roles=SERVICE_ROLES, query=LIST_QUERY)
async def list_logs(request: web.Request) -> web.Response:
    opts = list_options(request)
    if opts.keys is None:
        opts = dataclasses.replace(opts, keys=DEFAULT_KEYS)
    page = await request.app[STORE].list_logs(_log_filter(request), opts)
    return json_reply({row["log_id"]: row for row in page.rows}, headers=page_headers(page.next_cursor))


@routes.post("/logs", summary="store a log (pilots upload stdout/stderr/stdlog this way)", roles=PILOT_ROLES,
             pilot=True, body=POST_LOG_SCHEMA, responses={201: "created: {\"result\": log_id}"})
async def post_log(request: web.Request) -> web.Response:
    log_id = await logs.add_log(request.app[STORE], request[BODY], None)
    return json_reply({"result": log_id}, status=201)


@routes.get("/logs/{log_id}", summary="one log", roles=SERVICE_ROLES)
async def get_log(request: web.Request) -> web.Response:
    return json_reply((await logs.log_or_404(request.app[STORE], request.match_info["log_id"])).to_doc())


@routes.delete("/logs/{log_id}", summary="delete one log", roles=SERVICE_ROLES)
async def delete_log(request: web.Request) -> web.Response:
    await logs.delete_log(request.app[STORE], request.app[LOG_INDEX], request.match_info["log_id"])
    return json_reply({})


@routes.patch("/logs/{log_id}", summary="append a chunk to a log of the running attempt (live streaming)",
              roles=PILOT_ROLES, pilot=True, body=APPEND_SCHEMA,
              responses={409: "stale instance_id", 413: "the log reached its size limit"})
async def append_log(request: web.Request) -> web.Response:
    body = request[BODY]
    size = await logs.append(request.app[STORE], request.app[LOG_INDEX], request.match_info["log_id"],
                             body["append"], instance_id=body.get("instance_id"),
                             pilot=not caller(request).is_admin)  # pilot or system: fenced
    return json_reply({"size": size})


@routes.post("/tasks/{task_id}/logs", summary="start a live log (stdout, stderr, stdlog) of the running attempt",
             roles=PILOT_ROLES, pilot=True, held_task=True, body=STREAM_CREATE_SCHEMA,
             responses={201: "created: {\"result\": log_id}", 409: "stale instance_id"})
async def create_stream(request: web.Request) -> web.Response:
    body = request[BODY]
    log_id = await logs.start_stream(request.app[STORE], request.app[LOG_INDEX], request.match_info["task_id"],
                                     body["instance_id"], body["name"], body.get("data", ""))
    return json_reply({"result": log_id}, status=201)


@routes.post("/datasets/{dataset_id}/logs", summary="store a log of this dataset", roles=USER_ROLES,
             right="write", body=DATASET_LOG_SCHEMA, responses={201: "created: {\"result\": log_id}"})
async def post_dataset_log(request: web.Request) -> web.Response:
    log_id = await logs.add_log(request.app[STORE], request[BODY], request.match_info["dataset_id"])
    return json_reply({"result": log_id}, status=201)


@routes.delete("/datasets/{dataset_id}/logs", summary="delete every log of this dataset", roles=USER_ROLES,
               right="write")
async def delete_dataset_logs(request: web.Request) -> web.Response:
    deleted = await request.app[STORE].delete_logs(dataset_id=request.match_info["dataset_id"])
    return json_reply({"deleted": deleted})


@routes.get("/datasets/{dataset_id}/logs/{log_id}", summary="one log of this dataset (read right)",
            roles=USER_ROLES, right="read",
            query=[QueryParam("offset", "only the text after this many characters (follow a running log); "
                                        "the reply's \"offset\" is where the next read starts",
                              {"type": "integer", "minimum": 0})])
async def get_dataset_log(request: web.Request) -> web.Response:
    log = await logs.log_or_404(request.app[STORE], request.match_info["log_id"], request.match_info["dataset_id"])
    doc = log.to_doc()
    offset = int_param(request, "offset", None, minimum=0, maximum=2**62)
    if offset is not None:
        start = min(offset, len(log.data))
        doc.update(data=log.data[start:], offset=len(log.data))
    return json_reply(doc)


@routes.get("/datasets/{dataset_id}/tasks/{task_id}/logs", summary="a task's logs as {\"logs\": [...]}",
            roles=USER_ROLES, right="read", query=TASK_LOG_QUERY)
async def task_logs(request: web.Request) -> web.Response:
    store = request.app[STORE]
    task = await logs.task_or_404(store, request.match_info["task_id"], request.match_info["dataset_id"])
    num = int_param(request, "num", None, minimum=1, maximum=100_000)
    group = bool_param(request, "group", False)
    order = request.query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise bad_request(f'query parameter "order" must be asc or desc, got {order!r}')
    keys = pipe_list(request, "keys")
    found = await store.task_logs(task.task_id, num=num, group=bool(group), order=order)
    if not found:
        raise not_found(f"no logs for task {task.task_id}")
    return json_reply({"logs": [project(log.to_doc(), keys, "log_id") for log in found]})


@routes.delete("/datasets/{dataset_id}/tasks/{task_id}/logs", summary="delete a task's logs", roles=USER_ROLES,
               right="write")
async def delete_task_logs(request: web.Request) -> web.Response:
    store = request.app[STORE]
    task = await logs.task_or_404(store, request.match_info["task_id"], request.match_info["dataset_id"])
    return json_reply({"deleted": await store.delete_logs(task_id=task.task_id)})
