"""Module sources carried at submit: ``GET /datasets/{id}/sources[/{sha512}]``.

Pilots fetch the sources their claim names (``sources`` in the claim reply);
``frazil run --task`` fetches them as a user who may read the dataset. A blob
is served only through a dataset whose manifest names it.
"""
from __future__ import annotations

from aiohttp import web

from common.sources import SHA512_RE
from server.api.errors import not_found
from server.api.params import int_param, json_reply
from server.api.routing import ALL_ROLES, ApiRoutes, QueryParam
from server.keys import STORE
from server.scheduling.datasets import dataset_by_key

routes = ApiRoutes("sources")


async def _dataset_id(request: web.Request) -> str:
    dataset = await dataset_by_key(request.app[STORE], request.match_info["dataset_id"])
    if dataset is None:
        raise not_found("Dataset not found")
    return dataset.dataset_id


@routes.get("/datasets/{dataset_id}/sources", summary="the module sources of a config version: {sources: {path: "
            "sha512}}", roles=ALL_ROLES, right="read", pilot=True,
            query=[QueryParam("version", "config version (default: the newest)", {"type": "integer"})])
async def list_sources(request: web.Request) -> web.Response:
    version = int_param(request, "version", minimum=1, maximum=2 ** 62)
    return json_reply({"sources": await request.app[STORE].get_config_sources(await _dataset_id(request), version)})


@routes.get("/datasets/{dataset_id}/sources/{sha512}", summary="one module source's bytes (by its sha512)",
            roles=ALL_ROLES, right="read", pilot=True)
async def get_source(request: web.Request) -> web.Response:
    digest = request.match_info["sha512"]
    if not SHA512_RE.match(digest):
        raise not_found("not a sha512 (128 lowercase hex digits)")
    data = await request.app[STORE].get_source_blob(await _dataset_id(request), digest)
    if data is None:
        raise not_found("no module source with that sha512 in this dataset")
    return web.Response(body=data, content_type="application/octet-stream",
                        headers={"Cache-Control": "private, max-age=31536000, immutable"})
