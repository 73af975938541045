"""Health, Prometheus metrics and the OpenAPI document."""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.version import __version__
from server.api.params import json_reply
from server.api.routing import ANONYMOUS, ApiRoutes, openapi_document
from server.keys import METRICS, ROUTE_SPECS, STORE
from server.store import ListOptions

routes = ApiRoutes("misc")


@routes.get("/healthz", summary="liveness: the server answers and its store responds", roles={ANONYMOUS})
async def healthz(request: web.Request) -> web.Response:
    await request.app[STORE].list_datasets(opts=ListOptions(limit=1))  # proves the store answers
    return json_reply({})


@routes.get("/api/openapi.json", summary="this API, described in OpenAPI 3.1", roles={ANONYMOUS})
async def openapi_json(request: web.Request) -> web.Response:
    return json_reply(openapi_document(request.app[ROUTE_SPECS], version=__version__))


@routes.get("/metrics", summary="Prometheus metrics (low-cardinality labels)", roles={ANONYMOUS})
async def metrics_endpoint(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
