"""The aiohttp application factory: wires settings, store, auth, routes and loops.

Everything long-lived is opened in a ``cleanup_ctx`` generator and closed in
reverse order on shutdown, so a SIGTERM stops loops first, then the store.
"""
from __future__ import annotations

import importlib
import logging
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web

from common.version import __version__
from server.api.errors import ApiError, error_response
from server.api.routing import ApiRoutes, openapi_document
from server.auth import TokenAuthority, TokenError, load_or_create_key
from server.metrics import metrics_middleware
from server.keys import IDENTITY, ROUTE_SPECS, SERVICES, SETTINGS, STORE, TOKENS
from server.settings import Settings
from server.store import (
    ConflictError, InvalidArgumentError, InvalidQuery, NotFoundError, SchemaVersionError, Store, open_store,
)

log = logging.getLogger("frazil.server")

# One module per resource; each exposes ``routes: ApiRoutes``. Modules that do
# not exist yet are simply not listed.
ROUTE_MODULES: tuple[str, ...] = (
    "server.api.misc",
    "server.api.datasets",
    "server.api.config",
    "server.api.jobs",
    "server.api.tasks",
    "server.api.dataset_task_actions",
    "server.api.actions",
    "server.metrics",
    "server.api.users",
    "server.api.pilots",
    "server.api.task_actions",
    "server.api.logs",
    "server.api.task_stats",
    "server.api.scratch",
    "server.api.provenance",
    "server.web.pages",
    "server.provisioning.api",
)
# Background services started with the app: each module exposes
# ``async def service(app) -> AsyncIterator[None]`` (a cleanup_ctx generator).
SERVICE_MODULES: tuple[str, ...] = ("server.scheduling.service", "server.scheduling.action_worker",
                                    "server.provisioning.service")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
    "X-Content-Type-Options": "nosniff",
    "Server": f"frazil/{__version__}",
}
API_CSP = "default-src 'none'; frame-ancestors 'none';"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as ``{"code", "error"}``; nothing escapes as HTML or a bare 500."""
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = {404: "invalid api route", 405: f"method {request.method} not allowed here",
                   413: "request body too large"}.get(exc.status, exc.reason)
        return error_response(exc.status, message, headers={k: v for k, v in exc.headers.items()
                                                             if k in ("Allow", "Retry-After")})
    except (InvalidQuery, InvalidArgumentError) as exc:
        return error_response(400, str(exc))
    except NotFoundError as exc:
        return error_response(404, str(exc))
    except ConflictError as exc:
        return error_response(409, str(exc))
    except Exception:  # a bug: logged with its traceback, answered without one
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error_response(401, "Authorization header must be 'Bearer <token>'",
                                  headers={"WWW-Authenticate": "Bearer"})
        try:
            request[IDENTITY] = request.app[TOKENS].identify(token.strip())
        except TokenError as exc:
            return error_response(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return await handler(request)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # raised replies (ApiError, 404s) get the same headers
        _secure(exc)
        raise
    return _secure(response)


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "application/json":
        response.headers.setdefault("Content-Security-Policy", API_CSP)
    return response


def _store_context(store: Store | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = store is None
        try:
            app[STORE] = store if store is not None else await open_store(app[SETTINGS].db)
        except SchemaVersionError as exc:
            raise SystemExit(f"frazil server: {exc}") from None
        yield
        if opened:
            await app[STORE].close()
    return store_ctx


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               route_modules: tuple[str, ...] | None = None,
               service_modules: tuple[str, ...] | None = None) -> web.Application:
    """Build the server. ``store``: use an already open store (tests); it is then
    not closed on shutdown. ``service_modules=()`` runs no background loops."""
    settings = settings or Settings()
    app = web.Application(middlewares=[metrics_middleware, headers_middleware, error_middleware, auth_middleware],
                          client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[SERVICES] = {}
    secret = load_or_create_key(settings.path(settings.auth_key_file, "auth.key"))
    app[TOKENS] = TokenAuthority(secret, issuer=settings.token_issuer, openid_url=settings.openid_url,
                                 audience=settings.openid_audience)
    app.cleanup_ctx.append(_store_context(store))
    specs = []
    for module_name in route_modules if route_modules is not None else ROUTE_MODULES:
        routes: ApiRoutes = importlib.import_module(module_name).routes
        routes.register(app)
        specs.extend(routes.specs)
    app[ROUTE_SPECS] = specs
    if settings.loops:
        for module_name in service_modules if service_modules is not None else SERVICE_MODULES:
            app.cleanup_ctx.append(importlib.import_module(module_name).service)
    return app


def openapi(app: web.Application) -> dict:
    return openapi_document(app[ROUTE_SPECS], version=__version__)
