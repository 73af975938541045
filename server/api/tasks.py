"""Task routes of reference §4.3: admin ``/tasks``, ``/task_actions``, ``/task_counts``
and the per-dataset task reads (listing, one task, its attempts, summaries,
counts, stats). Per-dataset task writes live in ``dataset_task_actions``.

IceProd's "A,S" routes are admin-only here: pilots (system tokens) use their
own claim/report routes, never these.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from common import states
from server.api.errors import ApiError, bad_request, not_found
from server.api.params import bool_param, int_param, json_reply, list_options, page_headers, pipe_list
from server.api.routing import SERVICE_ROLES, ApiRoutes, QueryParam
from server.api.user_common import HEX_ID, check_status_name, finite, id_list, keyed
from server.keys import BODY, STORE, WORK_SIGNAL
from server.scheduling import statuses
from server.store import ListOptions, NewJob, NewTask, Store, TaskFilter
from server.store.query import TASK_SORT_FIELDS, project
from server.store.rules import checked_requirements

routes = ApiRoutes("tasks")

REQUIREMENTS = {"type": "object", "maxProperties": 64}
CREATE_BODY = {
    "type": "object", "additionalProperties": False,
    "required": ["dataset_id", "job_id", "task_index", "job_index", "name", "depends", "requirements"],
    "properties": {
        "dataset_id": {"type": "string", "minLength": 1, "maxLength": 64}, "job_id": HEX_ID,
        "task_index": {"type": "integer", "minimum": 0, "maximum": 10_000},
        "job_index": {"type": "integer", "minimum": 0, "maximum": 2**31},
        "name": {"type": "string", "minLength": 1, "maxLength": 1000},
        "depends": {"type": "array", "items": {"type": "string"}, "maxItems": 10_000},
        "requirements": REQUIREMENTS,
        "status": {"type": "string", "enum": [s for s in states.TASK_STATUSES if s != "processing"]},
        "priority": {"type": "number"},
        "instance_id": {"type": "string", "maxLength": 0, "description": "accepted for IceProd; must be empty"},
    },
}
QUEUE_BODY = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "num": {"type": "integer", "minimum": 1, "maximum": 100_000},
        "requirements": REQUIREMENTS,
        "dataset_deprio": {"type": "array", "items": {"type": "string"}, "maxItems": 100_000},
        "query_params": {"type": "object", "additionalProperties": False,
                         "properties": {k: {} for k in ("dataset_id", "site", "instance_id", "priority",
                                                         "requirements.site")}},
    },
}
TASK_LIST_QUERY = [
    QueryParam("status", "pipe-separated task statuses"), QueryParam("keys", "pipe-separated fields"),
    QueryParam("limit", "page size", {"type": "integer"}), QueryParam("after", "cursor from X-Next-Cursor"),
    QueryParam("sort", f"field=1|field=-1; fields: {', '.join(sorted(TASK_SORT_FIELDS))}"),
]


async def task_docs(store: Store, task_ids: list[str]) -> list[dict[str, Any]]:
    if not task_ids:
        return []
    page = await store.list_tasks(TaskFilter(task_ids=task_ids))
    order = {t: i for i, t in enumerate(task_ids)}
    return sorted(page.rows, key=lambda row: order.get(row["task_id"], len(order)))


# ---------------------------------------------------------------- admin routes


@routes.get("/tasks", summary="tasks of every dataset: {tasks: [...]}", roles=SERVICE_ROLES,
            query=[*TASK_LIST_QUERY, QueryParam("site", "prefix of the site")])
async def list_all_tasks(request: web.Request) -> web.Response:
    flt = TaskFilter(status=pipe_list(request, "status", states.TASK_STATUSES, "task"),
                     site=request.query.get("site") or None)
    page = await request.app[STORE].list_tasks(flt, list_options(request, sortable=TASK_SORT_FIELDS))
    return json_reply({"tasks": page.rows}, headers=page_headers(page.next_cursor))


@routes.post("/tasks", summary="create a task together with its (new) job", roles=SERVICE_ROLES, body=CREATE_BODY,
             responses={201: "created", 409: "the job already exists"})
async def create_task(request: web.Request) -> web.Response:
    data = request[BODY]
    store = request.app[STORE]
    # The store creates a job and all its tasks in one atomic step (a job is
    # never seen half-built), so a task can be added only with a new job.
    if await store.get_job(data["job_id"]) is not None:
        raise ApiError(409, f"job {data['job_id']} already exists; frazil creates a job's tasks together "
                            "with the job (materialization), not one by one")
    task = NewTask(name=data["name"], task_index=data["task_index"],
                   requirements=checked_requirements(data["requirements"]),
                   depends=data["depends"], priority=finite(data.get("priority", 1.0), "priority"),
                   status=data.get("status", "idle"))
    created = await store.create_jobs(data["dataset_id"], [NewJob(job_index=data["job_index"], tasks=[task],
                                                                   job_id=data["job_id"])])
    if not created:
        raise ApiError(409, f"job_index {data['job_index']} of dataset {data['dataset_id']} already exists")
    return json_reply({"result": task.task_id}, status=201)


@routes.get("/tasks/{task_id}", summary="one task", roles=SERVICE_ROLES)
async def get_task(request: web.Request) -> web.Response:
    task = await request.app[STORE].get_task(request.match_info["task_id"])
    if task is None:
        raise not_found("Task not found")
    return json_reply(task.to_doc())


@routes.patch("/tasks/{task_id}", summary="set priority and/or status (status without the state machine)",
              roles=SERVICE_ROLES, body={"type": "object", "additionalProperties": False, "minProperties": 1,
                                 "properties": {"priority": {"type": "number"},
                                                "status": {"type": "string", "enum": list(states.TASK_STATUSES)}}})
async def patch_task(request: web.Request) -> web.Response:
    data = request[BODY]
    priority = finite(data["priority"], "priority") if "priority" in data else None
    updated = await statuses.patch_task(request.app[STORE], request.match_info["task_id"], priority=priority,
                                        status=data.get("status"))
    return json_reply(updated.to_doc() if updated else {})


@routes.put("/tasks/{task_id}/status", summary="set a task's status (state machine; instance_id must match if given)",
            roles=SERVICE_ROLES, body={"type": "object", "required": ["status"], "additionalProperties": False,
                               "properties": {"status": {"type": "string", "enum": list(states.TASK_STATUSES)},
                                              "instance_id": {"type": "string", "maxLength": 64}}})
async def put_task_status(request: web.Request) -> web.Response:
    data = request[BODY]
    await statuses.set_task_status(request.app[STORE], request.match_info["task_id"], data["status"],
                                   instance_id=data.get("instance_id") or None)
    return json_reply({})


@routes.post("/task_actions/bulk_status/{status}", summary="set the listed tasks' status, no state check",
             roles=SERVICE_ROLES, body={"type": "object", "required": ["tasks"], "additionalProperties": False,
                                "properties": {"tasks": {**id_list("task"), "minItems": 1}}})
async def bulk_status_all(request: web.Request) -> web.Response:
    status = check_status_name("task", request.match_info["status"])
    await statuses.force_tasks(request.app[STORE], status, request[BODY]["tasks"])
    return json_reply({})


def _keys(*keys: str) -> ListOptions:
    return ListOptions(keys=keys)


@routes.post("/task_actions/waiting", summary="idle -> waiting for up to 100 tasks: {waiting: n}", roles=SERVICE_ROLES,
             body={"type": "object", "required": ["task_ids"], "additionalProperties": False,
                   "properties": {"task_ids": {**id_list("task"), "maxItems": 100}}})
async def tasks_waiting(request: web.Request) -> web.Response:
    store = request.app[STORE]
    page = await store.list_tasks(TaskFilter(task_ids=request[BODY]["task_ids"], status=["idle"]), _keys("task_id"))
    idle = [row["task_id"] for row in page.rows]
    moved = await store.bulk_task_status("waiting", task_ids=idle) if idle else 0
    return json_reply({"waiting": moved})


async def _queue(request: web.Request, default_num: int) -> list[dict[str, Any]]:
    """Queue waiting tasks by priority (``dataset_deprio`` last). Requirement
    matching is not done here as in IceProd: in frazil it happens when a pilot
    claims, so ``requirements`` is accepted for compatibility only."""
    body = request[BODY]
    params = body.get("query_params") or {}
    dataset_id = params.get("dataset_id")
    if dataset_id is not None and not isinstance(dataset_id, str):
        raise bad_request("key 'dataset_id': query_params.dataset_id must be a string")
    store = request.app[STORE]
    ids = await store.queue_tasks(body.get("num", default_num), dataset_deprio=body.get("dataset_deprio", []),
                                  dataset_id=dataset_id)
    if ids:
        request.app[WORK_SIGNAL].notify()  # claims waiting for work try again now
    docs = await task_docs(store, ids)
    if not docs:
        raise not_found("Task not found")
    return docs


@routes.post("/task_actions/queue", summary="queue the highest-priority waiting task; returns it (404 if none)",
             roles=SERVICE_ROLES, body=QUEUE_BODY)
async def queue_one(request: web.Request) -> web.Response:
    return json_reply((await _queue(request, 1))[0])


@routes.post("/task_actions/queue_many", summary="queue up to num waiting tasks; returns their docs (404 if none)",
             roles=SERVICE_ROLES, body=QUEUE_BODY)
async def queue_many(request: web.Request) -> web.Response:
    return json_reply(await _queue(request, 100))


@routes.get("/task_counts/status", summary="{status: count} over every dataset", roles=SERVICE_ROLES,
            query=[QueryParam("status", "pipe-separated task statuses"),
                   QueryParam("gpu", "true: GPU tasks only; false: CPU only", {"type": "boolean"})])
async def task_counts_all(request: web.Request) -> web.Response:
    counts = await request.app[STORE].task_counts_by_status(TaskFilter(
        status=pipe_list(request, "status", states.TASK_STATUSES, "task"), gpu=bool_param(request, "gpu")))
    return json_reply({s: counts[s] for s in states.TASK_STATUSES if s in counts})


# ---------------------------------------------------------------- per-dataset reads


@routes.get("/datasets/{dataset_id}/tasks", summary="tasks of a dataset, keyed by task_id", right="read",
            query=[*TASK_LIST_QUERY, QueryParam("name", "pipe-separated task names"),
                   QueryParam("job_id", "one job id"), QueryParam("job_index", "one job index", {"type": "integer"})])
async def list_dataset_tasks(request: web.Request) -> web.Response:
    flt = TaskFilter(dataset_id=request.match_info["dataset_id"],
                     status=pipe_list(request, "status", states.TASK_STATUSES, "task"),
                     name=pipe_list(request, "name"), job_id=request.query.get("job_id") or None,
                     job_index=int_param(request, "job_index", minimum=0, maximum=2**31))
    page = await request.app[STORE].list_tasks(flt, list_options(request, sortable=TASK_SORT_FIELDS))
    return json_reply(keyed(page.rows, "task_id"), headers=page_headers(page.next_cursor))


@routes.get("/datasets/{dataset_id}/tasks/{task_id}", summary="one task of a dataset (keys)", right="read",
            query=[QueryParam("keys", "pipe-separated fields")])
async def get_dataset_task(request: web.Request) -> web.Response:
    task = await statuses.task_of_dataset(request.app[STORE], request.match_info["dataset_id"],
                                          request.match_info["task_id"])
    return json_reply(project(task.to_doc(), pipe_list(request, "keys"), "task_id"))


@routes.get("/datasets/{dataset_id}/tasks/{task_id}/attempts",
            summary="every attempt of a task: where it ran, failure class, rule, reason, peaks, argv", right="read")
async def task_attempts(request: web.Request) -> web.Response:
    store = request.app[STORE]
    task = await statuses.task_of_dataset(store, request.match_info["dataset_id"], request.match_info["task_id"])
    return json_reply({"attempts": [a.to_doc() for a in await store.get_attempts(task.task_id)]})


@routes.get("/datasets/{dataset_id}/task_summaries/status", summary="{status: [task_id, ...]}", right="read")
async def task_summaries(request: web.Request) -> web.Response:
    summary = await request.app[STORE].task_status_summary(request.match_info["dataset_id"])
    return json_reply({s: summary[s] for s in states.TASK_STATUSES if s in summary})


@routes.get("/datasets/{dataset_id}/task_counts/status", summary="{status: count}", right="read",
            query=[QueryParam("status", "pipe-separated task statuses"),
                   QueryParam("gpu", "true: GPU tasks only; false: CPU only", {"type": "boolean"})])
async def task_counts(request: web.Request) -> web.Response:
    counts = await request.app[STORE].task_counts_by_status(TaskFilter(
        dataset_id=request.match_info["dataset_id"],
        status=pipe_list(request, "status", states.TASK_STATUSES, "task"), gpu=bool_param(request, "gpu")))
    return json_reply({s: counts[s] for s in states.TASK_STATUSES if s in counts})


@routes.get("/datasets/{dataset_id}/task_counts/name_status", summary="{task name: {status: count}}", right="read")
async def task_counts_name_status(request: web.Request) -> web.Response:
    return json_reply(await request.app[STORE].task_counts_by_name_status(request.match_info["dataset_id"]))


@routes.get("/datasets/{dataset_id}/task_stats", summary="per task name over complete tasks: count, hours, efficiency",
            right="read")
async def task_stats(request: web.Request) -> web.Response:
    return json_reply(await request.app[STORE].task_stats_by_name(request.match_info["dataset_id"]))

