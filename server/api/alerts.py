"""A user's alert subscriptions (docs/rest.md, "Alerts"): the user and admins only."""
from __future__ import annotations

import jsonschema
from aiohttp import web

from server.api.errors import ApiError, bad_request, not_found
from server.api.params import json_body, json_reply
from server.api.routing import ApiRoutes, caller, first_problem
from server.keys import STORE
from server.scheduling.alerts import subscribe
from server.store.records import ALERT_EVENTS

routes = ApiRoutes("alerts")
BODY_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["events"],
    "properties": {
        "events": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(ALERT_EVENTS)}},
        "dataset_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "webhook_url": {"type": "string", "pattern": "^https?://[^\\s]+$", "maxLength": 2000},
        "webhook_secret": {"type": "string", "minLength": 16, "maxLength": 256},
        "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$", "maxLength": 320},
        "spike_threshold": {"type": "integer", "minimum": 1, "maximum": 1000000},
        "stalled_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 8760},
    },
}

VALIDATOR = jsonschema.Draft202012Validator(BODY_SCHEMA)


def _owner(request: web.Request) -> str:
    """The path's user, if the caller is that user or an admin."""
    identity, username = caller(request), request.match_info["username"]
    if identity.username != username and not identity.acts_for_anyone:
        raise ApiError(403, "a user's alerts are theirs and the admins' only")
    return username


@routes.get("/users/{username}/alerts", summary="a user's alert subscriptions with their latest events",
            owner="user")
async def list_alerts(request: web.Request) -> web.Response:
    store = request.app[STORE]
    subs = await store.list_alert_subscriptions(_owner(request))
    return json_reply({"alerts": [{**s.to_doc(), "recent": [e.to_doc() for e in
                                                             await store.list_alert_events(s.subscription_id, 10)]}
                                  for s in subs]})


@routes.post("/users/{username}/alerts", summary="subscribe to events of the user's datasets (body: "
             "events, dataset_id?, webhook_url?, webhook_secret?, email?, spike_threshold?, stalled_hours?)")
async def add_alert(request: web.Request) -> web.Response:
    username = _owner(request)  # who may subscribe is decided before the body is read
    document = await json_body(request)
    problem = first_problem(VALIDATOR, document)
    if problem:
        raise bad_request(problem)
    made = await subscribe(request.app[STORE], caller(request), username, document)
    return json_reply(made.to_doc(), status=201)


@routes.delete("/users/{username}/alerts/{subscription_id}", summary="unsubscribe")
async def delete_alert(request: web.Request) -> web.Response:
    if not await request.app[STORE].delete_alert_subscription(request.match_info["subscription_id"],
                                                              _owner(request)):
        raise not_found(f"no alert subscription {request.match_info['subscription_id']!r}")
    return json_reply({})
