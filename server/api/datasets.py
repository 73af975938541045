"""``/datasets`` and ``/dataset_summaries``: IceProd's dataset routes (reference §4.3).

Differences from IceProd, all on purpose: listings are paginated (``limit`` +
``after``, cursor in ``X-Next-Cursor``) and filtered by read right with one
bulk lookup per page; priority must be a finite number >= 0; a plain user may
only create datasets in a group they belong to.
"""
from __future__ import annotations

from aiohttp import web

from common import states
from server.api.errors import not_found
from server.api.params import json_reply, list_options, page_headers, pipe_list
from server.api.routing import ApiRoutes, QueryParam, caller
from server.api.user_common import (
    MAX_COUNT, filter_readable, finite, keyed, status_body,
)
from server.auth import readable_ids
from server.keys import BODY, MATCHABLE, SETTINGS, STORE
from server.scheduling import datasets, statuses
from server.scheduling.backlog import materialization_state
from server.store import DatasetFilter

routes = ApiRoutes("datasets")

CREATE_BODY = {
    "type": "object",
    "required": ["description", "jobs_submitted", "tasks_submitted", "tasks_per_job", "group"],
    "additionalProperties": False,
    "properties": {
        "description": {"type": "string", "maxLength": 100_000},
        "jobs_submitted": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        "tasks_submitted": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT * 1000},
        "tasks_per_job": {"type": "integer", "minimum": 1, "maximum": 1000},
        "group": {"type": "string", "minLength": 1, "maxLength": 200},
        "priority": {"type": "number", "minimum": 0},
        "debug": {"type": "boolean"},
        "jobs_immutable": {"type": "boolean"},
        "always_active": {"type": "boolean"},
        "status": {"type": "string", "enum": list(states.DATASET_STATUSES)},
        "auth_groups_read": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 1000},
        "username": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}
LIST_QUERY = [
    QueryParam("status", "pipe-separated dataset statuses"),
    QueryParam("groups", "pipe-separated group names"),
    QueryParam("users", "pipe-separated user names"),
    QueryParam("keys", "pipe-separated fields to return (dataset_id always included)"),
    QueryParam("limit", "page size", {"type": "integer", "minimum": 1}),
    QueryParam("after", "cursor from the previous page's X-Next-Cursor header"),
]


@routes.get("/datasets", summary="list the datasets the caller may read, keyed by dataset_id", query=LIST_QUERY)
async def list_datasets(request: web.Request) -> web.Response:
    flt = DatasetFilter(status=pipe_list(request, "status", states.DATASET_STATUSES, "dataset"),
                        groups=pipe_list(request, "groups"), users=pipe_list(request, "users"))
    page = await request.app[STORE].list_datasets(flt, list_options(request))
    rows = await filter_readable(request, page)
    return json_reply(keyed(rows, "dataset_id"), headers=page_headers(page.next_cursor))


@routes.post("/datasets", summary="create a dataset (201 {result: dataset_id} + Location)", body=CREATE_BODY,
             responses={201: "created"})
async def create_dataset(request: web.Request) -> web.Response:
    data = request[BODY]
    if "priority" in data:
        finite(data["priority"], "priority")
    dataset = await datasets.create_dataset(request.app[STORE], caller(request), data)
    return json_reply({"result": dataset.dataset_id}, status=201,
                      headers={"Location": f"/datasets/{dataset.dataset_id}"})


@routes.get("/datasets/{dataset_id}", summary="one dataset", right="read")
async def get_dataset(request: web.Request) -> web.Response:
    dataset = await request.app[STORE].get_dataset(request.match_info["dataset_id"])
    if dataset is None:
        raise not_found("Dataset not found")
    # jobs_materialized, and why the rest is held back when a limit or the store's storage does
    state = await materialization_state(request.app[STORE], request.app[SETTINGS], dataset)
    # queued tasks nothing can run, with why (issue 14.3): the last round of the
    # matchable loop, read from memory (empty when no such loop runs)
    matchable = request.app.get(MATCHABLE)
    unmatchable = matchable.snapshot.for_dataset(dataset.dataset_id) if matchable else []
    return json_reply({**dataset.to_doc(), **state, "unmatchable": unmatchable})


@routes.put("/datasets/{dataset_id}/description", summary="set the description", right="write",
            body={"type": "object", "required": ["description"], "additionalProperties": False,
                  "properties": {"description": {"type": "string", "maxLength": 100_000}}})
async def put_description(request: web.Request) -> web.Response:
    if not await request.app[STORE].update_dataset(request.match_info["dataset_id"],
                                                   description=request[BODY]["description"]):
        raise not_found("Dataset not found")
    return json_reply({})


@routes.put("/datasets/{dataset_id}/status", summary="set the status (state machine enforced; idempotent)",
            right="write", body=status_body("dataset"))
async def put_status(request: web.Request) -> web.Response:
    await statuses.set_dataset_status(request.app[STORE], request.match_info["dataset_id"], request[BODY]["status"])
    return json_reply({})


@routes.put("/datasets/{dataset_id}/priority", summary="set the dataset priority (finite, >= 0)", right="write",
            body={"type": "object", "required": ["priority"], "additionalProperties": False,
                  "properties": {"priority": {"type": "number", "minimum": 0}}})
async def put_priority(request: web.Request) -> web.Response:
    priority = finite(request[BODY]["priority"], "priority")
    if not await request.app[STORE].update_dataset(request.match_info["dataset_id"], priority=priority):
        raise not_found("Dataset not found")
    return json_reply({})


@routes.put("/datasets/{dataset_id}/jobs_submitted", summary="raise jobs_submitted (never lowers it)",
            roles={"admin", "user"}, right="write",
            body={"type": "object", "required": ["jobs_submitted"], "additionalProperties": False,
                  "properties": {"jobs_submitted": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}}})
async def put_jobs_submitted(request: web.Request) -> web.Response:
    await request.app[STORE].set_jobs_submitted(request.match_info["dataset_id"], request[BODY]["jobs_submitted"])
    return json_reply({})


@routes.post("/datasets/{dataset_id}/dataset_actions/hard_reset",
             summary="set the dataset processing whatever its status (jobs and tasks untouched)", right="write")
async def hard_reset(request: web.Request) -> web.Response:
    await statuses.hard_reset_dataset(request.app[STORE], request.match_info["dataset_id"])
    return json_reply({})


@routes.post("/datasets/{dataset_id}/dataset_actions/truncate",
             summary="stop materializing new jobs (400 if the dataset is complete)", right="write")
async def truncate(request: web.Request) -> web.Response:
    if not await request.app[STORE].truncate_dataset(request.match_info["dataset_id"]):
        raise not_found("Dataset not found")
    return json_reply({})


@routes.get("/dataset_summaries/status", summary="{status: [dataset_id, ...]} of the datasets the caller may read")
async def dataset_summaries(request: web.Request) -> web.Response:
    store = request.app[STORE]
    summary = await store.dataset_status_summary()
    keep = await readable_ids(store, caller(request), [d for ids in summary.values() for d in ids])
    ordered = {status: [d for d in summary[status] if d in keep]
               for status in states.DATASET_STATUSES if status in summary}
    return json_reply({status: ids for status, ids in ordered.items() if ids})
