"""Per-dataset task writes (reference §4.3): one task's status, bulk status /
suspend / reset / hard reset, bulk requirements, and the per-job files of
``/datasets/{id}/files``.

Every status change is :mod:`server.scheduling.statuses`, which rolls the
affected jobs and the dataset up at once, so a reset task's job is
``processing`` again in the same request.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from common import states
from common.resources import MAXIMUM, MINIMUM
from server.api.errors import bad_request, not_found
from server.api.params import json_reply
from server.api.routing import ApiRoutes
from server.api.user_common import check_status_name, id_list, optional_body, status_body
from server.keys import BODY, STORE
from server.scheduling import statuses
from server.store import ListOptions, TaskFilter

routes = ApiRoutes("tasks")

SELECT_BODY = {"type": "object", "additionalProperties": False,
               "properties": {"jobs": id_list("job"), "tasks": id_list("task")}}
# IceProd's bulk_requirements take plain numbers; the ranges are the one
# requirement parser's (common.resources), which the store applies too.
REQUIREMENT_PROPS: dict[str, Any] = {
    **{name: {"type": "integer", "minimum": MINIMUM[name], "maximum": MAXIMUM[name]} for name in ("cpu", "gpu")},
    **{name: {"type": "number", "exclusiveMinimum": MINIMUM[name], "maximum": MAXIMUM[name]}
       for name in ("memory", "disk", "time")},
    "os": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 100},
    "site": {"type": "string", "maxLength": 200},
}
REQUIREMENTS_BODY = {"type": "object", "additionalProperties": False, "properties": REQUIREMENT_PROPS}
FILE_PROPS: dict[str, Any] = {
    "filename": {"type": "string", "minLength": 1, "maxLength": 10_000},
    "movement": {"type": "string", "enum": ["input", "output", "both"]},
    "local": {"type": "string", "maxLength": 10_000},
    "transfer": {"type": ["string", "boolean"], "enum": [True, False, "maybe", "yes", "no", "y", "n", "1", "0",
                                                         "true", "false", "True", "False"]},
    "compression": {"type": ["string", "boolean"]},
}


@routes.put("/datasets/{dataset_id}/tasks/{task_id}/status", summary="set a task's status (state machine enforced)",
            right="write", body=status_body("task"))
async def put_task_status(request: web.Request) -> web.Response:
    await statuses.set_task_status(request.app[STORE], request.match_info["task_id"], request[BODY]["status"],
                                   dataset_id=request.match_info["dataset_id"])
    return json_reply({})


@routes.post("/datasets/{dataset_id}/task_actions/bulk_status/{status}",
             summary="set the listed tasks' status without the state machine (404 if none changed)", right="write",
             body={"type": "object", "required": ["tasks"], "additionalProperties": False,
                   "properties": {"tasks": {**id_list("task"), "minItems": 1}}})
async def bulk_status(request: web.Request) -> web.Response:
    status = check_status_name("task", request.match_info["status"])
    await statuses.force_tasks(request.app[STORE], status, request[BODY]["tasks"],
                               dataset_id=request.match_info["dataset_id"])
    return json_reply({})


async def _bulk(request: web.Request, status: str, *, force: bool = False,
                reset_failures: bool = False) -> web.Response:
    body = await optional_body(request, SELECT_BODY)
    await statuses.bulk_tasks(request.app[STORE], request.match_info["dataset_id"], status, job_ids=body.get("jobs"),
                              task_ids=body.get("tasks"), force=force, reset_failures=reset_failures)
    return json_reply({})


@routes.post("/datasets/{dataset_id}/task_actions/bulk_suspend",
             summary="suspend tasks (body {jobs} or {tasks} optional: all of the dataset)", right="write")
async def bulk_suspend(request: web.Request) -> web.Response:
    return await _bulk(request, "suspended")


@routes.post("/datasets/{dataset_id}/task_actions/bulk_reset",
             summary="tasks back to idle from allowed statuses (body {jobs} or {tasks} optional)", right="write")
async def bulk_reset(request: web.Request) -> web.Response:
    return await _bulk(request, states.RESET_TARGET)


@routes.post("/datasets/{dataset_id}/task_actions/bulk_hard_reset",
             summary="any task back to idle with failures zeroed (body {jobs} or {tasks} optional)", right="write")
async def bulk_hard_reset(request: web.Request) -> web.Response:
    return await _bulk(request, states.RESET_TARGET, force=True, reset_failures=True)


async def _requirements(request: web.Request, *, replace: bool) -> web.Response:
    name = request.match_info["name"]
    body = request[BODY]
    if not body and not replace:
        raise bad_request("body must name at least one requirement (cpu, gpu, memory, disk, time, os, site)")
    changed = await request.app[STORE].update_requirements(request.match_info["dataset_id"], name, body,
                                                           replace=replace)
    if not changed:
        raise not_found("Tasks not found")
    return json_reply({})


@routes.patch("/datasets/{dataset_id}/task_actions/bulk_requirements/{name}",
              summary="set the given requirement keys on every task with that name", right="write",
              body=REQUIREMENTS_BODY)
async def patch_requirements(request: web.Request) -> web.Response:
    return await _requirements(request, replace=False)


@routes.post("/datasets/{dataset_id}/task_actions/bulk_requirements/{name}",
             summary="replace requirements of every task with that name (numbers never shrink)", right="write",
             body=REQUIREMENTS_BODY)
async def replace_requirements(request: web.Request) -> web.Response:
    return await _requirements(request, replace=True)


# ---------------------------------------------------------------- per-job files


_TRANSFER_AS_ICEPROD = {"true": True, "yes": True, "y": True, "1": True,
                        "false": False, "no": False, "n": False, "0": False}


def _file_doc(doc: dict[str, Any]) -> dict[str, Any]:
    # IceProd lists files without their dataset and task ids, and with transfer as
    # its boolean (or "maybe"), not the string the store keeps.
    out = {k: v for k, v in doc.items() if k not in ("dataset_id", "task_id")}
    if isinstance(out.get("transfer"), str):
        out["transfer"] = _TRANSFER_AS_ICEPROD.get(out["transfer"].lower(), out["transfer"])
    return out


def _file_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"local": body.get("local", "")}
    if "transfer" in body:
        kwargs["transfer"] = str(body["transfer"]).lower()
    if "compression" in body:
        value = body["compression"]
        kwargs["compression"] = value if isinstance(value, bool) else value.lower() in ("1", "true", "yes", "y")
    return kwargs


@routes.get("/datasets/{dataset_id}/files", summary="every per-job file of the dataset: {files: [...]}", right="read")
async def list_files(request: web.Request) -> web.Response:
    files = await request.app[STORE].list_files(request.match_info["dataset_id"])
    return json_reply({"files": [_file_doc(f.to_doc()) for f in files]})


@routes.post("/datasets/{dataset_id}/files", summary="add a file to the task (job_index, task_name): {result: task_id}",
             right="write", responses={201: "created"},
             body={"type": "object", "additionalProperties": False,
                   "required": ["filename", "movement", "job_index", "task_name"],
                   "properties": {**FILE_PROPS, "job_index": {"type": "integer", "minimum": 0, "maximum": 2**31},
                                  "task_name": {"type": "string", "minLength": 1, "maxLength": 1000}}})
async def add_file(request: web.Request) -> web.Response:
    body = request[BODY]
    store = request.app[STORE]
    dataset_id = request.match_info["dataset_id"]
    page = await store.list_tasks(TaskFilter(dataset_id=dataset_id, job_index=body["job_index"],
                                             name=[body["task_name"]]), ListOptions(keys=("task_id",), limit=1))
    if not page.rows:
        raise bad_request("task referred to not found")
    task_id = page.rows[0]["task_id"]
    await store.add_file(dataset_id, body["filename"], body["movement"], task_id=task_id, **_file_kwargs(body))
    return json_reply({"result": task_id}, status=201)


@routes.get("/datasets/{dataset_id}/files/{task_id}", summary="the task's per-job files: {files: [...]}", right="read")
async def list_task_files(request: web.Request) -> web.Response:
    files = await request.app[STORE].list_files(request.match_info["dataset_id"], request.match_info["task_id"])
    return json_reply({"files": [_file_doc(f.to_doc()) for f in files]})


@routes.post("/datasets/{dataset_id}/files/{task_id}", summary="add a file to the task", right="write",
             responses={201: "created"},
             body={"type": "object", "additionalProperties": False, "required": ["filename", "movement"],
                   "properties": FILE_PROPS})
async def add_task_file(request: web.Request) -> web.Response:
    body = request[BODY]
    store = request.app[STORE]
    dataset_id = request.match_info["dataset_id"]
    task = await statuses.task_of_dataset(store, dataset_id, request.match_info["task_id"])
    await store.add_file(dataset_id, body["filename"], body["movement"], task_id=task.task_id, **_file_kwargs(body))
    return json_reply({}, status=201)


@routes.delete("/datasets/{dataset_id}/files/{task_id}", summary="delete the task's per-job files", right="write")
async def delete_task_files(request: web.Request) -> web.Response:
    await request.app[STORE].delete_files(request.match_info["dataset_id"], request.match_info["task_id"])
    return json_reply({})
