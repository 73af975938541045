"""The director and the federation's discovery document.

pelicanfs asks ``/.well-known/pelican-configuration`` for the director, then
the director about each object: a GET (reads, answered with a redirect to the
best cache — here the origin — in ``Location`` and ``Link``), a GET under
``/api/v1.0/director/origin/`` (writes go to the origin) and a PROPFIND
(listings: the ``collections-url``). Every answer carries
``X-Pelican-Namespace``, which says whether the namespace needs a token.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from server.federation.namespaces import BadPath, Namespaces


@dataclass
class DirectorConfig:
    """Mutable: the URLs are known only once the ports are bound."""

    director_url: str
    origin_url: str
    namespaces: Namespaces
    issuer: str | None


CONFIG: web.AppKey[DirectorConfig] = web.AppKey("director_config", DirectorConfig)
ORIGIN_API = "/api/v1.0/director/origin"


async def discovery(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    body = {"director_endpoint": config.director_url,
            "namespace_registration_endpoint": config.director_url,
            "broker_endpoint": config.director_url}
    return web.json_response(body)


def _redirect(request: web.Request, path: str) -> web.Response:
    config = request.app[CONFIG]
    namespaces = config.namespaces
    try:
        path = namespaces.clean(path)
    except BadPath as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    prefix = namespaces.match(path)
    if prefix is None:
        raise web.HTTPNotFound(text=f"{path}: no namespace of this federation holds it\n")
    target = config.origin_url + quote(path)
    headers = {
        "Location": target,
        "Link": f'<{target}>; rel="duplicate"; pri=1; depth={max(path.count("/") - 1, 1)}',
        # pelicanfs splits this header on ", " exactly.
        "X-Pelican-Namespace": (f"namespace={prefix}, require-token={'true' if config.issuer else 'false'}, "
                                f"collections-url={config.origin_url}"),
    }
    if config.issuer:
        headers["X-Pelican-Authorization"] = f"issuer={config.issuer}"
        headers["X-Pelican-Token-Generation"] = (f"issuer={config.issuer}, max-scope-depth=10, "
                                                 f"strategy=OAuth2, base-path={prefix}")
    return web.Response(status=307, headers=headers)


async def to_origin(request: web.Request) -> web.Response:
    return _redirect(request, "/" + request.raw_path.split("?", 1)[0][len(ORIGIN_API):].lstrip("/"))


async def to_object(request: web.Request) -> web.Response:
    return _redirect(request, request.raw_path.split("?", 1)[0])


def make_director_app(config: DirectorConfig) -> web.Application:
    app = web.Application()
    app[CONFIG] = config
    app.router.add_get("/.well-known/pelican-configuration", discovery)
    for method in ("GET", "PUT", "PROPFIND", "DELETE"):
        app.router.add_route(method, ORIGIN_API + "/{tail:.*}", to_origin)
        app.router.add_route(method, "/{tail:.*}", to_object)
    return app
