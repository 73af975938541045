"""Typed keys for objects shared through the aiohttp application and requests."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from server.auth import Identity, TokenAuthority
    from server.settings import Settings
    from server.store import Store

STORE: web.AppKey["Store"] = web.AppKey("store")
SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
TOKENS: web.AppKey["TokenAuthority"] = web.AppKey("tokens")
ROUTE_SPECS: web.AppKey[list[Any]] = web.AppKey("route_specs")
SERVICES: web.AppKey[dict[str, Any]] = web.AppKey("services")
"""Other long-lived objects (scheduler, provider, metrics) by name."""

IDENTITY: web.RequestKey["Identity"] = web.RequestKey("identity", object)
"""The caller's :class:`server.auth.Identity` (absent = anonymous)."""
BODY: web.RequestKey[Any] = web.RequestKey("body", object)
"""The JSON body, parsed and checked against the route's schema."""
