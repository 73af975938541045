"""``/config/{dataset_id}``: the dataset config, kept as immutable versions.

IceProd overwrote the one stored config on every PUT, so an edit lost the
config that earlier jobs ran with. frazil appends a version instead (author =
caller, optional ``?comment=``); GET returns the newest unless ``?version=N``
asks for another, and ``/config/{dataset_id}/versions`` lists them all.
"""
from __future__ import annotations

from aiohttp import web

from common.config import ConfigProblem
from server.api.errors import bad_request, not_found
from server.api.params import int_param, json_reply
from server.api.routing import ApiRoutes, QueryParam, caller
from server.keys import BODY, CONFIG_POOL, SETTINGS, STORE
from server.scheduling.config_pool import ConfigWorkTimeout, run_config_work
from server.scheduling.config_work import check_stored

routes = ApiRoutes("config")

MAX_COMMENT = 10_000


def problems_text(problems: list[ConfigProblem]) -> str | None:
    """All problems, one ``Validation error in config[...]: msg`` line each
    (the first line is the one IceProd would have reported)."""
    return "\n".join(str(p) for p in problems) if problems else None


@routes.get("/config/{dataset_id}", summary="the dataset's config (newest version, or ?version=N)", right="read",
            query=[QueryParam("version", "config version number", {"type": "integer", "minimum": 1})])
async def get_config(request: web.Request) -> web.Response:
    version = int_param(request, "version", minimum=1, maximum=2**31)
    stored = await request.app[STORE].get_config(request.match_info["dataset_id"], version)
    if stored is None:
        raise not_found("Config not found")
    config = dict(stored.config)
    config.pop("dataset_id", None)
    return json_reply(config)


@routes.put("/config/{dataset_id}", summary="store a new config version (validated; the old ones are kept)",
            right="write", body={"type": "object"},
            query=[QueryParam("comment", "why the config changed (kept with the version)")])
async def put_config(request: web.Request) -> web.Response:
    # Filled with defaults and checked once (in a worker process: a big config's
    # schema check is CPU work); the filled config is stored.
    settings = request.app[SETTINGS]
    try:
        config, problems = await run_config_work(request.app.get(CONFIG_POOL), check_stored, request[BODY],
                                                 settings.config_check_seconds)
    except ConfigWorkTimeout as exc:
        raise bad_request(str(exc)) from None
    text = problems_text(problems)
    if text:
        raise bad_request(text)
    comment = request.query.get("comment", "")
    if len(comment) > MAX_COMMENT:
        raise bad_request(f'query parameter "comment" is longer than {MAX_COMMENT} characters')
    dataset_id = request.match_info["dataset_id"]
    await request.app[STORE].add_config_version(dataset_id, config, caller(request).username, comment)
    return json_reply({})


@routes.get("/config/{dataset_id}/versions", summary="the config versions: version, author, created, comment, sha256",
            right="read")
async def list_versions(request: web.Request) -> web.Response:
    versions = await request.app[STORE].list_config_versions(request.match_info["dataset_id"])
    return json_reply({"versions": [
        {"version": v.version, "author": v.author, "created": v.created, "comment": v.comment, "sha256": v.sha256}
        for v in versions]})
