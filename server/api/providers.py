"""``GET /providers`` (admin): what the provider submitted and what registered.

``providers`` has the running provider's own counts (submitted, idle,
running, held, done, and the latest held pilots it removed with their
reasons); ``registered`` counts the pilots in the store by the provider they
named at registration and their state, so pilots started by hand show up too.
"""
from __future__ import annotations

from collections import Counter

from aiohttp import web

from server.api.params import json_reply
from server.api.routing import ApiRoutes
from server.keys import PROVIDER, PROVISIONER, SETTINGS, STORE

routes = ApiRoutes("providers")


@routes.get("/providers", summary="pilot providers: submitted/idle/running/held counts and registered pilots",
            roles={"admin"})
async def providers(request: web.Request) -> web.Response:
    app = request.app
    provider = app.get(PROVIDER)
    provisioner = app.get(PROVISIONER)
    registered: dict[str, Counter[str]] = {}
    for pilot in await app[STORE].list_pilots():
        registered.setdefault(pilot.provider or "(unknown)", Counter())[pilot.state] += 1
    return json_reply({
        "configured": app[SETTINGS].provider,
        "providers": {provider.name: provider.counts().to_doc()} if provider is not None else {},
        "last_round": getattr(provisioner, "last_plan", {}),
        "last_error": getattr(provisioner, "last_error", ""),
        "registered": {name: dict(counts) for name, counts in sorted(registered.items())},
    })
