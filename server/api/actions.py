"""``/actions/{action}``: IceProd's services API (reference §4.4) on the main server.

POST checks the whole payload up front (types, unknown keys, rights, and for
submit/edit_config the config with every task planned), so a bad request is a
400 and nothing is queued; a good one is queued and answered 201
``{"result": message_id}``. The action worker runs it; GET
``/actions/{action}/{id}`` follows it through queued → processing →
complete | error.
"""
from __future__ import annotations

from aiohttp import web

from server.api.errors import bad_request, forbidden, not_found
from server.auth import may_read_action
from server.api.params import json_body, json_reply
from server.api.routing import ApiRoutes, caller
from server.keys import ACTION_WORKER, BODY, CONFIG_POOL, SETTINGS, STORE
from server.scheduling.action_worker import queue_action
from server.scheduling.actions import ACTIONS
from server.store import ActionMessage

routes = ApiRoutes("actions")
ACTION_NAMES = ", ".join(ACTIONS)


def _action(request: web.Request) -> str:
    name = request.match_info["action"]
    if name not in ACTIONS:
        raise not_found(f"unknown action {name!r}; actions: {ACTION_NAMES}")
    return name


def _reply(message: ActionMessage) -> dict:
    return {"id": message.message_id, "status": message.status, "error_message": message.error_message,
            "payload": message.payload}


async def _queue(request: web.Request, name: str, payload: object) -> web.Response:
    app = request.app
    message = await queue_action(app[STORE], app[SETTINGS], app.get(ACTION_WORKER), caller(request), name, payload,
                                 app.get(CONFIG_POOL))
    return json_reply({"result": message.message_id}, status=201)


@routes.get("/actions/{action}", summary="message counts of an action: {queued, processing, error, complete}",
            owner="anyone")
async def action_counts(request: web.Request) -> web.Response:
    return json_reply(await request.app[STORE].action_counts(_action(request)))


@routes.post("/actions/{action}", summary="check and queue an action request: 201 {result: message_id}",
             body={"type": "object"}, responses={201: "queued"})
async def post_action(request: web.Request) -> web.Response:
    return await _queue(request, _action(request), request[BODY])


@routes.get("/actions/{action}/{message_id}", summary="one request: {id, status, error_message, payload}",
            owner="action")
async def get_action(request: web.Request) -> web.Response:
    name = _action(request)
    store = request.app[STORE]
    message = await store.get_action(request.match_info["message_id"])
    if message is None or message.action != name:
        raise not_found("Message not found")
    if not await may_read_action(store, caller(request), message):
        raise forbidden("authorization failed")
    return json_reply(_reply(message))


@routes.get("/actions/materialization/datasets/{dataset_id}", summary="the dataset's latest materialization request",
            right="read")
async def latest_materialization(request: web.Request) -> web.Response:
    message = await request.app[STORE].latest_action("materialization", request.match_info["dataset_id"])
    if message is None:
        raise not_found("Message not found")
    return json_reply({"id": message.message_id, "status": message.status})


@routes.post("/actions/materialization/datasets/{dataset_id}",
             summary="request materialization of the dataset (body {num, set_status} optional)", right="write",
             responses={201: "queued"})
async def request_materialization(request: web.Request) -> web.Response:
    body = await json_body(request, required=False)
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return await _queue(request, "materialization", {**body, "dataset_id": request.match_info["dataset_id"]})
