"""The aiohttp application factory: wires settings, store, auth, routes and loops.

Everything long-lived is opened in a ``cleanup_ctx`` generator and closed in
reverse order on shutdown, so a SIGTERM stops loops first, then the store.
"""
from __future__ import annotations

import logging
from typing import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from common.version import __version__
from server.scheduling.config_pool import service as config_pool
from server.auth.revocation import revocation_sync
from server.api import (
    actions, alerts, config, credentials, dataset_task_actions, datasets, jobs, logs, misc, pilots, production, provenance,
    providers, quarantines, scratch, sources, task_actions, task_stats, tasks, users,
)
from server.api.errors import ApiError, error_response
from server.api.routing import ApiRoutes
from server.auth import TokenAuthority, TokenError, load_or_create_key
from server.credentials import loop as credentials_refresh
from server.credentials.cipher import SecretCipher, load_or_create_fernet_key
from server.credentials.device import DeviceFlows
from server.credentials.keys import CIPHER, DEVICE_FLOWS, STORAGE_TOKENS
from server.credentials.tokens import StorageTokens
from server.errors import headers_of, reason_of, status_of
from server.keys import (
    CLAIM_CACHE, CLAIM_LIMITER, IDENTITY, LOG_INDEX, METRICS, REPORTS, ROUTE_SPECS, SETTINGS, STORE, TOKENS,
    WORK_SIGNAL,
)
from server.metrics import ServerMetrics, metrics_middleware
from server.provisioning import service as provisioning
from server.scheduling import action_worker
from server.scheduling import service as scheduling
from server.scheduling.claims import ClaimCache, TokenBucket
from server.scheduling.work_signal import WorkSignal, work_signal_service
from server.scheduling.logs import LogIndex
from server.scheduling.reports import Reports, UsageMeter
from server.settings import Settings
from server.store import SchemaVersionError, Store, open_store
from server.web import pages
from server.web.framework import WEB, PageRoutes, WebState
from server.web.history import HISTORY, History

log = logging.getLogger("frazil.server")

RouteTable = ApiRoutes | PageRoutes
"""What a route module exposes as ``routes``: ``register(app)`` and ``specs`` (for OpenAPI)."""
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

ROUTE_TABLES: tuple[RouteTable, ...] = (
    misc.routes, datasets.routes, config.routes, jobs.routes, tasks.routes, dataset_task_actions.routes,
    actions.routes, users.routes, credentials.routes, pilots.routes, task_actions.routes, logs.routes,
    task_stats.routes, scratch.routes, sources.routes, provenance.routes, pages.routes, providers.routes,
    production.routes, quarantines.routes, alerts.routes,
)
BACKGROUND_SERVICES: tuple[CleanupCtx, ...] = (scheduling.service, action_worker.service, provisioning.service,
                                               credentials_refresh.service)
"""Started with the app (when ``settings.loops``), after the store opened; stopped before it closes."""

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
    except Exception as exc:
        status = status_of(exc)
        if status is not None:  # a domain error raised by a service (server.errors)
            return error_response(status, str(exc), headers=headers_of(exc) or None, reason=reason_of(exc))
        log.exception("unhandled error on %s %s", request.method, request.path)  # a bug: logged with its
        return error_response(500, "internal server error")  # traceback, answered without one


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
            app[STORE] = store if store is not None else await open_store(
                app[SETTINGS].db, durable=app[SETTINGS].durable_commits)
        except SchemaVersionError as exc:
            raise SystemExit(f"frazil server: {exc}") from None
        yield
        if opened:
            await app[STORE].close()
    return store_ctx


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               routes: Sequence[RouteTable] = ROUTE_TABLES,
               services: Sequence[CleanupCtx] = BACKGROUND_SERVICES) -> web.Application:
    """Build the server. ``store``: use an already open store (tests); it is then
    not closed on shutdown. ``routes`` / ``services``: the route tables and
    background services to use (tests pass fewer; ``services=()`` runs no
    background loops, as ``settings.loops=False`` does)."""
    settings = settings or Settings()
    app = web.Application(middlewares=[metrics_middleware, headers_middleware, error_middleware, auth_middleware],
                          client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    secret = load_or_create_key(settings.path(settings.auth_key_file, "auth.key"))  # the one place it is read
    app[TOKENS] = TokenAuthority(secret, issuer=settings.token_issuer, openid_url=settings.openid_url,
                                 audience=settings.openid_audience)
    app[WEB] = WebState.from_secret(secret)
    app[METRICS] = ServerMetrics()
    app[CLAIM_LIMITER] = TokenBucket(settings.claim_rate_per_pilot)
    app[CLAIM_CACHE] = ClaimCache()
    app[WORK_SIGNAL] = WorkSignal()
    app[REPORTS] = Reports(settings, app[CLAIM_CACHE], UsageMeter())
    app[LOG_INDEX] = LogIndex()
    app[HISTORY] = History()
    app[CIPHER] = SecretCipher(load_or_create_fernet_key(
        settings.path(settings.credentials_key_file, "credentials.key")))
    app[STORAGE_TOKENS] = StorageTokens(app[CIPHER], settings.storage_namespace, settings.token_clients)
    app[DEVICE_FLOWS] = DeviceFlows(settings.token_clients)
    app.cleanup_ctx.append(_store_context(store))
    app.cleanup_ctx.append(revocation_sync)  # always: revoked tokens fail on every replica
    app.cleanup_ctx.append(config_pool)  # always: config checks never run on the event loop
    app.cleanup_ctx.append(work_signal_service)  # always: waiting claims see tasks other replicas queue
    specs = []
    for table in routes:
        table.register(app)
        specs.extend(table.specs)
    app[ROUTE_SPECS] = specs
    if settings.loops:
        app.cleanup_ctx.extend(services)
    return app
