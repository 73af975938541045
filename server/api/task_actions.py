"""The pilot's task life cycle over HTTP: claim, processing, complete, reset, failed.

The bodies are :mod:`common.protocol`'s messages; what a claim and a report do is
:mod:`server.scheduling.claims` and :mod:`server.scheduling.reports`. A
report whose ``instance_id`` no longer holds the task is answered 409 and
changes nothing.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from server.api.params import json_reply
from common.protocol import AttemptReport, ClaimRequest
from server.api.routing import PILOT_ROLES, ApiRoutes
from server.credentials.keys import STORAGE_TOKENS
from server.keys import BODY, CLAIM_CACHE, CLAIM_LIMITER, REPORTS, SETTINGS, STORE, WORK_SIGNAL
from server.scheduling import claims, reports
from server.scheduling.service import wake

routes = ApiRoutes("task_actions")

PROCESSING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"instance_id": {"type": "string", "minLength": 1, "maxLength": 64},
                   "site": {"type": "string", "maxLength": 1000}},
    "required": ["instance_id"],
    "additionalProperties": False,
}


@routes.post("/task_actions/process", summary="claim one queued task that fits the pilot's free resources",
             roles=PILOT_ROLES, pilot=True, body=ClaimRequest,
             responses={404: "nothing fits now, or within the claim's wait (see Retry-After)",
                        429: "claiming too fast (see Retry-After)"})
async def process(request: web.Request) -> web.Response:
    app = request.app
    reply = await claims.claim(app[STORE], app[SETTINGS], app[CLAIM_LIMITER], app[CLAIM_CACHE], request[BODY],
                               origin=str(request.url.origin()), storage=app[STORAGE_TOKENS],
                               signal=app[WORK_SIGNAL], gone=lambda: _hung_up(request))
    return web.Response(body=reply, content_type="application/json")


def _hung_up(request: web.Request) -> bool:
    """The pilot closed the connection of its waiting claim (it stops): claim nothing for it."""
    transport = request.transport
    return transport is None or transport.is_closing()


@routes.post("/tasks/{task_id}/task_actions/processing", summary="the pilot started the claimed task",
             roles=PILOT_ROLES, pilot=True, held_task=True, body=PROCESSING_SCHEMA, responses={409: "stale instance_id"})
async def processing(request: web.Request) -> web.Response:
    """Claims are already ``processing``; this acknowledges (and renews the
    lease), and still moves a ``queued`` task with this instance_id as IceProd did."""
    task = await reports.processing(request.app[STORE], request.app[SETTINGS], request.match_info["task_id"],
                                    request[BODY]["instance_id"])
    return json_reply(task.to_doc())


@routes.post("/tasks/{task_id}/task_actions/complete", summary="the attempt succeeded; record outputs for provenance",
             roles=PILOT_ROLES, pilot=True, held_task=True, body=AttemptReport, responses={409: "stale instance_id"})
async def complete(request: web.Request) -> web.Response:
    return json_reply(await request.app[REPORTS].complete(request.app[STORE], request.match_info["task_id"],
                                                          request[BODY]))


@routes.post("/tasks/{task_id}/task_actions/reset", summary="non-physics failure: retry (escalating what ran out)",
             roles=PILOT_ROLES, pilot=True, held_task=True, body=AttemptReport, responses={409: "stale instance_id"})
async def reset(request: web.Request) -> web.Response:
    return _requeued(request, await request.app[REPORTS].failure(request.app[STORE], request.match_info["task_id"],
                                                                 request[BODY], physics_route=False))


@routes.post("/tasks/{task_id}/task_actions/failed", summary="physics failure: the task fails",
             roles=PILOT_ROLES, pilot=True, held_task=True, body=AttemptReport, responses={409: "stale instance_id"})
async def failed(request: web.Request) -> web.Response:
    return _requeued(request, await request.app[REPORTS].failure(request.app[STORE], request.match_info["task_id"],
                                                                 request[BODY], physics_route=True))


def _requeued(request: web.Request, reply: dict[str, Any]) -> web.Response:
    """A retry that may run now (escalated, infrastructure, or no pacing) is
    queued by a queue round started now, so waiting claims get it at once; a
    paced one waits for its time (the queue loop wakes itself then)."""
    unpaced = reply["infrastructure"] or reply["requirement_changes"] or not request.app[SETTINGS].retry_delay_seconds
    if reply.get("status") == "waiting" and unpaced:
        wake(request.app, "queue")
    return json_reply(reply)
