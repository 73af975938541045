"""Pilot registration, heartbeat, drain and exit (DESIGN.md §3.2, §3.5): the
HTTP face of :mod:`server.scheduling.pilots`; the bodies are
:mod:`common.protocol`'s messages."""
from __future__ import annotations

import time

from aiohttp import web

from common.batchsys import pilot_words
from common.containers import os_images
from common.protocol import Heartbeat, HeartbeatReply, Registration, RegistrationReply
from server.api.errors import bad_request, not_found
from server.api.params import json_reply
from server.api.routing import PILOT_ROLES, ApiRoutes, QueryParam, caller, other_pilot
from server.auth import Identity
from server.auth.identity import PILOT_USERNAME
from server.keys import BODY, SETTINGS, STORE, TOKENS
from server.scheduling import pilots
from server.store import NewPilot

routes = ApiRoutes("pilots")


def pilot_token(request: web.Request, pilot_id: str) -> tuple[str, float]:
    """A token for ``pilot_id`` alone, short-lived: the registration's and
    every heartbeat's (renewal). It keeps the name of the pilot token that
    registered (``frazil token revoke NAME`` ends its pilots' tokens too)."""
    who: Identity = caller(request)
    lifetime = request.app[SETTINGS].pilot_token_lifetime
    username = who.username if who.is_pilot else PILOT_USERNAME
    return request.app[TOKENS].create_for_pilot(pilot_id, lifetime, username=username), time.time() + lifetime



@routes.post("/pilots", summary="register a pilot with its slot's total resources", roles=PILOT_ROLES,
             pilot=True, bootstrap=True, body=Registration,
             responses={201: "created: {\"result\": pilot_id, \"os_images\": {OS_ARCH: image}}"})
async def register(request: web.Request) -> web.Response:
    body: Registration = request[BODY]
    bound = caller(request).pilot_id
    if bound is not None and body.pilot_id != bound:  # registering again after the server forgot it
        raise other_pilot(caller(request), f"pilot {body.pilot_id or '(a new one)'}")
    images = os_images(request.app[SETTINGS].os_images)  # checked when the settings were loaded
    # a group pilot's OS words carry its group (common/batchsys.py): the claim matches them as they are
    new = NewPilot(resources=body.resources.to_json(), site=body.site, hostname=body.hostname,
                   os=pilot_words(body.group, body.os),
                   provider=body.provider, provider_job_id=body.provider_job_id, version=body.version)
    pilot_id = await pilots.register(request.app[STORE], new, body.pilot_id)
    settings = request.app[SETTINGS]
    token, expires = pilot_token(request, pilot_id)
    return json_reply(RegistrationReply(result=pilot_id, os_images=images, lease_seconds=settings.lease_seconds,
                                        heartbeat_seconds=settings.heartbeat_interval, token=token,
                                        token_expires=expires).to_json(), status=201)


@routes.patch("/pilots/{pilot_id}", summary="heartbeat: free resources and running tasks; renews their leases",
              roles=PILOT_ROLES, pilot=True, body=Heartbeat)
async def heartbeat(request: web.Request) -> web.Response:
    body: Heartbeat = request[BODY]
    settings = request.app[SETTINGS]
    beat = await pilots.heartbeat(request.app[STORE], settings, request.match_info["pilot_id"], drain=body.drain,
                                  free=body.free.to_json() if body.free is not None else None, tasks=body.tasks)
    token, expires = pilot_token(request, request.match_info["pilot_id"])
    return json_reply(HeartbeatReply(drain=beat.drain, tasks=beat.tasks, lease_seconds=settings.lease_seconds,
                                     heartbeat_seconds=settings.heartbeat_interval, token=token,
                                     token_expires=expires).to_json())


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
