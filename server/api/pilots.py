"""Pilot registration, heartbeat, drain and exit (DESIGN.md §3.2, §3.5): the
HTTP face of :mod:`server.scheduling.pilots`, and the body schemas the pilot
routes share."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from common.containers import os_images
from common.resources import Resources
from server.api.errors import bad_request, not_found
from server.api.params import json_reply
from server.api.routing import ApiRoutes, QueryParam, caller
from server.keys import BODY, SETTINGS, STORE
from server.scheduling import pilots
from server.store import NewPilot

routes = ApiRoutes("pilots")

PILOT_ROLES = {"admin", "system"}
ID_PATTERN = "^[A-Za-z0-9_.-]{1,64}$"

RESOURCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cpu": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "gpu": {"type": "integer", "minimum": 0, "maximum": 100_000},
        "memory": {"type": "number", "minimum": 0, "maximum": 1e9},
        "disk": {"type": "number", "minimum": 0, "maximum": 1e12},
        "time": {"type": "number", "minimum": -1e6, "maximum": 1e6},
    },
    "additionalProperties": False,
}
"""cpu/gpu counts, memory/disk GB, time = hours of lifetime left (may be < 0 at the very end).
Bounded so that no number can overflow a database integer."""
OS_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "string", "maxLength": 200},
                                       {"type": "array", "items": {"type": "string", "maxLength": 200},
                                        "maxItems": 100}]}
TEXT = {"type": "string", "maxLength": 1000}

REGISTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resources": {**RESOURCE_SCHEMA, "required": ["cpu", "memory", "disk"]},
        "site": TEXT, "hostname": TEXT, "os": OS_SCHEMA, "provider": TEXT, "provider_job_id": TEXT,
        "version": TEXT,
        "pilot_id": {"type": "string", "pattern": ID_PATTERN},
    },
    "required": ["resources"],
    "additionalProperties": False,
}
HEARTBEAT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "free": RESOURCE_SCHEMA,
        "resources": RESOURCE_SCHEMA,
        "tasks": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 10_000},
        "drain": {"type": "boolean"},
    },
    "additionalProperties": False,
}


@routes.post("/pilots", summary="register a pilot with its slot's total resources", roles=PILOT_ROLES,
             pilot=True, body=REGISTER_SCHEMA, responses={201: "created: {\"result\": pilot_id, \"os_images\": {OS_ARCH: image}}"})
async def register(request: web.Request) -> web.Response:
    body = request[BODY]
    try:
        Resources.from_requirements(body["resources"])
    except ValueError as exc:
        raise bad_request(f"key 'resources': {exc}") from None
    images = os_images(request.app[SETTINGS].os_images)  # checked when the settings were loaded
    new = NewPilot(resources=dict(body["resources"]), site=body.get("site", ""), hostname=body.get("hostname", ""),
                   os=pilots.os_list(body.get("os")), provider=body.get("provider", ""),
                   provider_job_id=body.get("provider_job_id", ""), version=body.get("version", ""))
    return json_reply({"result": await pilots.register(request.app[STORE], new, body.get("pilot_id")),
                       "os_images": images}, status=201)


@routes.patch("/pilots/{pilot_id}", summary="heartbeat: free resources and running tasks; renews their leases",
              roles=PILOT_ROLES, pilot=True, body=HEARTBEAT_SCHEMA)
async def heartbeat(request: web.Request) -> web.Response:
    body = request[BODY]
    settings = request.app[SETTINGS]
    beat = await pilots.heartbeat(request.app[STORE], settings, request.match_info["pilot_id"],
                                  drain=body.get("drain"), free=body.get("free", body.get("resources")),
                                  tasks=list(body.get("tasks", [])))
    return json_reply({"drain": beat.drain, "tasks": beat.tasks, "lease_seconds": settings.lease_seconds,
                       "heartbeat_seconds": settings.heartbeat_seconds})


@routes.delete("/pilots/{pilot_id}", summary="a pilot exits; tasks it still holds go back to the queue at once",
               roles=PILOT_ROLES, pilot=True)
async def delete(request: web.Request) -> web.Response:
    released = await pilots.depart(request.app[STORE], request.app[SETTINGS], request.match_info["pilot_id"])
    return json_reply({"released": released})


@routes.get("/pilots", summary="registered pilots as {pilot_id: doc}", roles=PILOT_ROLES, pilot=True,
            query=[QueryParam("site", "only pilots of this site"),
                   QueryParam("state", "active | lost | exited")])
async def list_pilots(request: web.Request) -> web.Response:
    caller(request)
    state = request.query.get("state") or None
    if state is not None and state not in {"active", "lost", "exited"}:
        raise bad_request(f"unknown pilot state {state!r}; expected one of active, exited, lost")
    found = await request.app[STORE].list_pilots(site=request.query.get("site") or None, state=state)
    return json_reply({p.pilot_id: p.to_doc() for p in found})


@routes.get("/pilots/{pilot_id}", summary="one pilot", roles=PILOT_ROLES, pilot=True)
async def get_pilot(request: web.Request) -> web.Response:
    pilot_id = request.match_info["pilot_id"]
    pilot = await request.app[STORE].get_pilot(pilot_id)
    if pilot is None:
        raise not_found(f"pilot {pilot_id} not found")
    return json_reply(pilot.to_doc())
