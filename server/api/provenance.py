"""``GET /provenance?url=...``: how a file was made (:mod:`server.scheduling.provenance`)."""
from __future__ import annotations

from aiohttp import web

from server.api.errors import bad_request
from server.api.params import json_reply
from server.api.routing import ApiRoutes, QueryParam, caller
from server.keys import STORE
from server.scheduling import provenance as records

routes = ApiRoutes("provenance")
MAX_URL = 8192


@routes.get("/provenance", summary="the attempts that produced a file URL", roles={"admin", "user", "system"},
            query=[QueryParam("url", "the output's URL (file://, http(s)://, gsiftp://, ...)", required=True)])
async def provenance(request: web.Request) -> web.Response:
    identity = caller(request)
    url = request.query.get("url", "")
    if not url:
        raise bad_request('query parameter "url" is required')
    if len(url) > MAX_URL:
        raise bad_request(f'query parameter "url" is longer than {MAX_URL} characters')
    return json_reply({"url": url, "results": await records.provenance(request.app[STORE], identity, url)})
