"""Logs: IceProd's routes (reference §4.3) plus live streaming from pilots.

While a task runs, its pilot creates a log for the running attempt
(``POST /tasks/{task_id}/logs``) and appends chunks to it
(``PATCH /logs/{log_id}``). Both are fenced by the claim's ``instance_id``:
a pilot that lost its task cannot write into the logs of the attempt that
replaced it. Reading one log of a dataset needs the read right (IceProd
wanted write).
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

from aiohttp import web

from server.api.errors import ApiError, bad_request, not_found
from server.api.params import bool_param, int_param, json_reply, list_options, page_headers, pipe_list
from server.api.routing import ApiRoutes, QueryParam, caller
from server.keys import BODY, STORE
from server.store import Log, LogFilter, NewLog, NotFoundError, Store, Task
from server.store.query import project

routes = ApiRoutes("logs")
ADMIN = {"admin"}
PILOT_ROLES = {"admin", "system"}
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


@dataclasses.dataclass
class StreamedLog:
    task_id: str
    attempt: int | None
    size: int


class LogIndex:
    """What an append needs to know about a log (its task, attempt, size),
    kept in memory: reading the log back for every chunk would make
    streaming cost grow with the log. A miss (another replica created the
    log, or a restart) reads it once. Logs stop growing at ``max_chars``."""

    def __init__(self, max_chars: int = 64 * 1024 * 1024, max_entries: int = 100_000):
        self.max_chars = max_chars
        self.max_entries = max_entries
        self._logs: OrderedDict[str, StreamedLog] = OrderedDict()

    def remember(self, log_id: str, entry: StreamedLog) -> None:
        self._logs[log_id] = entry
        self._logs.move_to_end(log_id)
        while len(self._logs) > self.max_entries:
            self._logs.popitem(last=False)

    async def lookup(self, store: Store, log_id: str) -> StreamedLog:
        entry = self._logs.get(log_id)
        if entry is None:
            log = await _log_or_404(store, log_id)
            entry = StreamedLog(log.task_id, log.attempt, log.size or len(log.data))
            self.remember(log_id, entry)
        return entry

    def forget(self, log_id: str) -> None:
        self._logs.pop(log_id, None)


LOG_INDEX: web.AppKey[LogIndex] = web.AppKey("log_index", LogIndex)


def _index(request: web.Request) -> LogIndex:
    return request.app[LOG_INDEX]


async def _task(store: Store, task_id: str, dataset_id: str | None = None) -> Task:
    task = await store.get_task(task_id)
    if task is None or (dataset_id is not None and task.dataset_id != dataset_id):
        raise not_found(f"task {task_id} not found" + (f" in dataset {dataset_id}" if dataset_id else ""))
    return task


async def _attempt_of(store: Store, task: Task, instance_id: str | None, attempt: int | None) -> int | None:
    """Which attempt a log belongs to: named, found by its instance_id, or the latest."""
    if attempt is not None:
        return attempt
    if instance_id:
        for record in await store.get_attempts(task.task_id):
            if record.instance_id == instance_id:
                return record.attempt
        raise bad_request(f"key 'instance_id': no attempt of task {task.task_id} has instance_id {instance_id!r}")
    return task.attempts or None


async def _create(store: Store, body: dict[str, Any], dataset_id: str | None) -> str:
    task_id = body.get("task_id") or ""
    attempt = None
    if body.get("dataset_id") and dataset_id and body["dataset_id"] != dataset_id:
        raise bad_request(f"key 'dataset_id': {body['dataset_id']!r} is not this route's dataset {dataset_id!r}")
    dataset_id = dataset_id or body.get("dataset_id") or ""
    if task_id:
        task = await _task(store, task_id, dataset_id or None)
        dataset_id = task.dataset_id
        attempt = await _attempt_of(store, task, body.get("instance_id"), body.get("attempt"))
    elif body.get("instance_id") or body.get("attempt"):
        raise bad_request("key 'task_id' is needed with instance_id or attempt")
    return await store.add_log(NewLog(name=body.get("name") or "log", data=body["data"], dataset_id=dataset_id,
                                      task_id=task_id, attempt=attempt))


def _log_filter(request: web.Request, dataset_id: str | None = None) -> LogFilter:
    return LogFilter(dataset_id=dataset_id or request.query.get("dataset_id") or None,
                     task_id=request.query.get("task_id") or None, name=pipe_list(request, "name"),
                     from_time=request.query.get("from") or None, to_time=request.query.get("to") or None)


@routes.get("/logs", summary="logs as {log_id: doc}", roles=ADMIN, query=LIST_QUERY)
async def list_logs(request: web.Request) -> web.Response:
    opts = list_options(request)
    if opts.keys is None:
        opts = dataclasses.replace(opts, keys=DEFAULT_KEYS)
    page = await request.app[STORE].list_logs(_log_filter(request), opts)
    return json_reply({row["log_id"]: row for row in page.rows}, headers=page_headers(page.next_cursor))


@routes.post("/logs", summary="store a log (pilots upload stdout/stderr/stdlog this way)", roles=PILOT_ROLES,
             pilot=True, body=POST_LOG_SCHEMA, responses={201: "created: {\"result\": log_id}"})
async def post_log(request: web.Request) -> web.Response:
    log_id = await _create(request.app[STORE], request[BODY], None)
    return json_reply({"result": log_id}, status=201)


async def _log_or_404(store: Store, log_id: str, dataset_id: str | None = None) -> Log:
    log = await store.get_log(log_id)
    if log is None or (dataset_id is not None and log.dataset_id != dataset_id):
        raise not_found(f"log {log_id} not found")
    return log


@routes.get("/logs/{log_id}", summary="one log", roles=ADMIN)
async def get_log(request: web.Request) -> web.Response:
    return json_reply((await _log_or_404(request.app[STORE], request.match_info["log_id"])).to_doc())


@routes.delete("/logs/{log_id}", summary="delete one log", roles=ADMIN)
async def delete_log(request: web.Request) -> web.Response:
    _index(request).forget(request.match_info["log_id"])
    if not await request.app[STORE].delete_log(request.match_info["log_id"]):
        raise not_found(f"log {request.match_info['log_id']} not found")
    return json_reply({})


@routes.patch("/logs/{log_id}", summary="append a chunk to a log of the running attempt (live streaming)",
              roles=PILOT_ROLES, pilot=True, body=APPEND_SCHEMA,
              responses={409: "stale instance_id", 413: "the log reached its size limit"})
async def append_log(request: web.Request) -> web.Response:
    store = request.app[STORE]
    body = request[BODY]
    log_id = request.match_info["log_id"]
    index = _index(request)
    entry = await index.lookup(store, log_id)
    instance_id = body.get("instance_id")
    if entry.task_id and (instance_id or caller(request).is_pilot):
        if not instance_id:
            raise bad_request("missing key: instance_id (pilots append only to their running attempt's logs)")
        task = await _task(store, entry.task_id)
        if task.status != "processing" or task.instance_id != instance_id or task.attempts != entry.attempt:
            raise ApiError(409, f"stale instance_id for log {log_id}: its attempt of task {task.task_id} "
                                "is no longer running under this claim")
    if entry.size + len(body["append"]) > index.max_chars:
        raise ApiError(413, f"log {log_id} is full ({index.max_chars} characters); "
                            "keep the rest in the pilot's own copy")
    try:
        entry.size = await store.append_log(log_id, body["append"])
    except NotFoundError:
        index.forget(log_id)
        raise
    return json_reply({"size": entry.size})


@routes.post("/tasks/{task_id}/logs", summary="start a live log (stdout, stderr, stdlog) of the running attempt",
             roles=PILOT_ROLES, pilot=True, body=STREAM_CREATE_SCHEMA,
             responses={201: "created: {\"result\": log_id}", 409: "stale instance_id"})
async def create_stream(request: web.Request) -> web.Response:
    store = request.app[STORE]
    body = request[BODY]
    task = await _task(store, request.match_info["task_id"])
    if task.status != "processing" or task.instance_id != body["instance_id"]:
        raise ApiError(409, f"stale instance_id for task {task.task_id}: this claim no longer holds the task")
    attempt = task.attempts or None
    data = body.get("data", "")
    log_id = await store.add_log(NewLog(name=body["name"], data=data, dataset_id=task.dataset_id,
                                        task_id=task.task_id, attempt=attempt))
    _index(request).remember(log_id, StreamedLog(task.task_id, attempt, len(data)))
    return json_reply({"result": log_id}, status=201)


@routes.post("/datasets/{dataset_id}/logs", summary="store a log of this dataset", roles=USER_ROLES,
             right="write", body=DATASET_LOG_SCHEMA, responses={201: "created: {\"result\": log_id}"})
async def post_dataset_log(request: web.Request) -> web.Response:
    log_id = await _create(request.app[STORE], request[BODY], request.match_info["dataset_id"])
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
    log = await _log_or_404(request.app[STORE], request.match_info["log_id"], request.match_info["dataset_id"])
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
    task = await _task(store, request.match_info["task_id"], request.match_info["dataset_id"])
    num = int_param(request, "num", None, minimum=1, maximum=100_000)
    group = bool_param(request, "group", False)
    order = request.query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise bad_request(f'query parameter "order" must be asc or desc, got {order!r}')
    keys = pipe_list(request, "keys")
    logs = await store.task_logs(task.task_id, num=num, group=bool(group), order=order)
    if not logs:
        raise not_found(f"no logs for task {task.task_id}")
    return json_reply({"logs": [project(log.to_doc(), keys, "log_id") for log in logs]})


@routes.delete("/datasets/{dataset_id}/tasks/{task_id}/logs", summary="delete a task's logs", roles=USER_ROLES,
               right="write")
async def delete_task_logs(request: web.Request) -> web.Response:
    store = request.app[STORE]
    task = await _task(store, request.match_info["task_id"], request.match_info["dataset_id"])
    return json_reply({"deleted": await store.delete_logs(task_id=task.task_id)})
