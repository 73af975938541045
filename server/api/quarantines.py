"""Quarantined hosts and sites (admin): list, quarantine by hand, lift
(docs/rest.md, "Quarantine"; the loop that finds them is
:mod:`server.scheduling.quarantine`)."""
from __future__ import annotations

from aiohttp import web

from server.api.errors import bad_request, not_found
from server.api.params import json_reply
from server.api.routing import ApiRoutes, QueryParam, caller
from server.keys import BODY, CLAIM_CACHE, STORE
from server.scheduling.quarantine import lift, list_active, quarantine_by_hand

routes = ApiRoutes("quarantines")
ADMIN = {"admin"}
BODY_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["kind", "name"],
    "properties": {
        "kind": {"enum": ["host", "site"]},
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "reason": {"type": "string", "maxLength": 1000},
        "hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 8760},
    },
}


@routes.get("/quarantines", summary="quarantined hosts and sites (in force now; all=true: the newest of all)",
            roles=ADMIN, query=[QueryParam("all", "true: also lifted and expired ones", {"type": "boolean"})])
async def list_quarantines(request: web.Request) -> web.Response:
    raw = request.query.get("all", "false")
    if raw not in ("true", "false"):
        raise bad_request(f"query 'all': expected true or false, got {raw[:80]!r}")
    everything = raw == "true"
    found = await list_active(request.app[STORE], everything=everything)
    return json_reply({"quarantines": [q.to_doc() for q in found]})


@routes.post("/quarantines", summary="quarantine a host or site by hand (its pilots get no claims)", roles=ADMIN,
             body=BODY_SCHEMA)
async def add_quarantine(request: web.Request) -> web.Response:
    body = request[BODY]
    made, new = await quarantine_by_hand(request.app[STORE], body["kind"], body["name"], body.get("reason", ""),
                                         float(body.get("hours", 24)), caller(request).username)
    request.app[CLAIM_CACHE].quarantines.forget()
    return json_reply(made.to_doc(), status=201 if new else 200)


@routes.delete("/quarantines/{quarantine_id}", summary="lift a quarantine", roles=ADMIN)
async def lift_quarantine(request: web.Request) -> web.Response:
    quarantine_id = request.match_info["quarantine_id"]
    lifted = await lift(request.app[STORE], quarantine_id, caller(request).username)
    if lifted is None:
        raise not_found(f"no quarantine {quarantine_id!r}")
    request.app[CLAIM_CACHE].quarantines.forget()
    return json_reply(lifted.to_doc())
