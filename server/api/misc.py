"""Health, the OpenAPI document and the catch-all for unknown routes."""
from __future__ import annotations

from aiohttp import web

from server.api.params import json_reply
from server.api.routing import ANONYMOUS, ApiRoutes
from server.store import ListOptions

routes = ApiRoutes("misc")


@routes.get("/healthz", summary="liveness: the server answers and its store responds", roles={ANONYMOUS})
async def healthz(request: web.Request) -> web.Response:
    from server.keys import STORE
    await request.app[STORE].list_datasets(opts=ListOptions(limit=1))  # proves the store answers
    return json_reply({})


@routes.get("/api/openapi.json", summary="this API, described in OpenAPI 3.1", roles={ANONYMOUS})
async def openapi_json(request: web.Request) -> web.Response:
    from server.app import openapi
    return json_reply(openapi(request.app))
