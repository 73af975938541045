"""The pilot's task life cycle over HTTP: claim, processing, complete, reset, failed.

The body schemas live here; what a claim and a report do is
:mod:`server.scheduling.claims` and :mod:`server.scheduling.reports`. A
report whose ``instance_id`` no longer holds the task is answered 409 and
changes nothing.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from server.api.params import json_reply
from server.api.pilots import OS_SCHEMA, RESOURCE_SCHEMA, TEXT
from server.api.routing import ApiRoutes
from server.credentials.keys import STORAGE_TOKENS
from server.keys import BODY, CLAIM_CACHE, CLAIM_LIMITER, REPORTS, SETTINGS, STORE
from server.scheduling import claims, reports

routes = ApiRoutes("task_actions")
PILOT_ROLES = {"admin", "system"}

CLAIM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pilot_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "resources": {**RESOURCE_SCHEMA, "required": ["cpu", "memory", "disk", "time"]},
        "os": OS_SCHEMA, "site": TEXT, "hostname": TEXT,
    },
    "required": ["pilot_id", "resources"],
    "additionalProperties": False,
}
NUMBER_OR_NULL = {"type": ["number", "null"], "minimum": -1e12, "maximum": 1e12}
"""Bounded so no value can overflow a database integer or a float conversion."""
STRING_OR_NULL = {"type": ["string", "null"], "maxLength": 1_000_000}
EXIT_CODE = {"type": "integer", "minimum": -1_000_000, "maximum": 1_000_000}
RECORD_LIST = {"type": "array", "items": {"type": "object"}, "maxItems": 100_000}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "instance_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "time_used": {"type": ["number", "null"], "minimum": 0, "maximum": 1e9},
        "resources": {"type": "object", "additionalProperties": NUMBER_OR_NULL},
        "site": TEXT, "hostname": TEXT, "host": TEXT,
        "outputs": {"type": "array", "maxItems": 100_000, "items": {
            "type": "object", "required": ["url"],
            "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 4096},
                           "size": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**62},
                           "sha512": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{128}$"}}}},
        "inputs": RECORD_LIST, "modules": RECORD_LIST,
        "exit_codes": {"type": "array", "items": EXIT_CODE, "maxItems": 100_000},
        "exit_code": {"type": ["integer", "null"], "minimum": -1_000_000, "maximum": 1_000_000},
        "signal": {"type": ["integer", "null"], "minimum": 1, "maximum": 128},
        "class": {"enum": ["physics", "non-physics", "nonphysics", "infra", None]},
        "failure_class": {"enum": ["physics", "non-physics", "nonphysics", "infra", None]},
        "kind": STRING_OR_NULL, "rule": STRING_OR_NULL, "reason": STRING_OR_NULL,
        "stdout": STRING_OR_NULL, "stderr": STRING_OR_NULL, "stdlog": STRING_OR_NULL,
        "status": TEXT, "action": STRING_OR_NULL, "workdir": STRING_OR_NULL,
        "start": NUMBER_OR_NULL, "end": NUMBER_OR_NULL,
        "version": TEXT, "frazil_version": TEXT,
    },
    "required": ["instance_id"],
    "additionalProperties": False,
}
"""Accepts IceProd's terse bodies and the pilot's full ``TaskResult.to_dict()``."""
PROCESSING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"instance_id": {"type": "string", "minLength": 1, "maxLength": 64}, "site": TEXT},
    "required": ["instance_id"],
    "additionalProperties": False,
}


@routes.post("/task_actions/process", summary="claim one queued task that fits the pilot's free resources",
             roles=PILOT_ROLES, pilot=True, body=CLAIM_SCHEMA,
             responses={404: "nothing fits now (see Retry-After)", 429: "claiming too fast (see Retry-After)"})
async def process(request: web.Request) -> web.Response:
    body = request[BODY]
    app = request.app
    reply = await claims.claim(app[STORE], app[SETTINGS], app[CLAIM_LIMITER], app[CLAIM_CACHE],
                               pilot_id=body["pilot_id"], resources=body["resources"], os=body.get("os"),
                               site=body.get("site"), hostname=body.get("hostname"),
                               origin=str(request.url.origin()), storage=app[STORAGE_TOKENS])
    return web.Response(body=reply, content_type="application/json")


@routes.post("/tasks/{task_id}/task_actions/processing", summary="the pilot started the claimed task",
             roles=PILOT_ROLES, pilot=True, body=PROCESSING_SCHEMA, responses={409: "stale instance_id"})
async def processing(request: web.Request) -> web.Response:
    """Claims are already ``processing``; this acknowledges (and renews the
    lease), and still moves a ``queued`` task with this instance_id as IceProd did."""
    task = await reports.processing(request.app[STORE], request.app[SETTINGS], request.match_info["task_id"],
                                    request[BODY]["instance_id"])
    return json_reply(task.to_doc())


@routes.post("/tasks/{task_id}/task_actions/complete", summary="the attempt succeeded; record outputs for provenance",
             roles=PILOT_ROLES, pilot=True, body=REPORT_SCHEMA, responses={409: "stale instance_id"})
async def complete(request: web.Request) -> web.Response:
    return json_reply(await request.app[REPORTS].complete(request.app[STORE], request.match_info["task_id"],
                                                          request[BODY]))


@routes.post("/tasks/{task_id}/task_actions/reset", summary="non-physics failure: retry (escalating what ran out)",
             roles=PILOT_ROLES, pilot=True, body=REPORT_SCHEMA, responses={409: "stale instance_id"})
async def reset(request: web.Request) -> web.Response:
    return json_reply(await request.app[REPORTS].failure(request.app[STORE], request.match_info["task_id"],
                                                         request[BODY], physics_route=False))


@routes.post("/tasks/{task_id}/task_actions/failed", summary="physics failure: the task fails",
             roles=PILOT_ROLES, pilot=True, body=REPORT_SCHEMA, responses={409: "stale instance_id"})
async def failed(request: web.Request) -> web.Response:
    return json_reply(await request.app[REPORTS].failure(request.app[STORE], request.match_info["task_id"],
                                                         request[BODY], physics_route=True))
