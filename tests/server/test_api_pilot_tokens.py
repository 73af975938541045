"""Pilot tokens (docs/operators.md, trust boundaries): a provider's token may
only register; the registration answers a short-lived token bound to that
pilot_id, which acts for that pilot alone and is renewed by each heartbeat."""
from __future__ import annotations

import time
from typing import Any

import aiohttp

from common.protocol import HeartbeatReply, Reason, RegistrationReply
from server.keys import TOKENS
from tests.server.test_api_pilot_support import PILOT_RESOURCES, make_dataset


async def call(server, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.request(method, server.url + path, json=body) as reply:
            return reply.status, await reply.json()


async def register(server, token: str, pilot_id: str | None = None) -> RegistrationReply:
    body: dict[str, Any] = {"resources": PILOT_RESOURCES, "site": "test-site"}
    if pilot_id:
        body["pilot_id"] = pilot_id
    status, doc = await call(server, token, "POST", "/pilots", body)
    assert status == 201, doc
    return RegistrationReply.parse(doc)


def claim_body(pilot_id: str) -> dict[str, Any]:
    return {"pilot_id": pilot_id, "resources": PILOT_RESOURCES}


async def test_a_bootstrap_token_only_registers_and_gets_a_token_bound_to_its_pilot(server):
    made = await make_dataset(server.store)
    bootstrap = server.app[TOKENS].create_bootstrap(600)
    assert server.app[TOKENS].identify(bootstrap).register_only
    registered = await register(server, bootstrap)
    pilot_id = registered.result
    # the bootstrap token cannot claim, heartbeat or read pilots: 403 register_only
    for method, path, body in (("POST", "/task_actions/process", claim_body(pilot_id)),
                               ("PATCH", f"/pilots/{pilot_id}", {"tasks": []}),
                               ("GET", f"/pilots/{pilot_id}", None)):
        status, doc = await call(server, bootstrap, method, path, body)
        assert (status, doc["reason"]) == (403, Reason.REGISTER_ONLY.value), (path, doc)
    assert (await server.store.get_task(made.task_ids[0])).status == "queued"  # nothing was claimed
    # the registration's token: bound to the pilot, short-lived (a lease and a heartbeat at least)
    assert registered.token and registered.token_expires is not None
    identity = server.app[TOKENS].identify(registered.token)
    assert (identity.role, identity.pilot_id, identity.register_only) == ("pilot", pilot_id, False)
    lifetime = server.settings.pilot_token_lifetime
    assert abs(registered.token_expires - (time.time() + lifetime)) < 5
    status, task = await call(server, registered.token, "POST", "/task_actions/process", claim_body(pilot_id))
    assert status == 200, task


async def test_a_pilot_token_cannot_act_for_another_pilot(server):
    made = await make_dataset(server.store)
    bootstrap = server.app[TOKENS].create_bootstrap(600)
    a, b = await register(server, bootstrap), await register(server, bootstrap)
    status, task = await call(server, b.token, "POST", "/task_actions/process", claim_body(b.result))
    assert status == 200 and task["task_id"] == made.task_ids[0]
    report = {"instance_id": task["instance_id"], "time_used": 1}
    refusals = [
        ("PATCH", f"/pilots/{b.result}", {"tasks": [task["task_id"]]}),          # heartbeat as B
        ("DELETE", f"/pilots/{b.result}", None),                                  # exit as B (releases B's tasks)
        ("POST", "/task_actions/process", claim_body(b.result)),                 # claim as B
        ("POST", "/pilots", {"resources": PILOT_RESOURCES, "pilot_id": b.result}),  # register as B
        ("POST", "/pilots", {"resources": PILOT_RESOURCES}),                     # register a new pilot
        ("POST", f"/tasks/{task['task_id']}/task_actions/processing", {"instance_id": task["instance_id"]}),
        ("POST", f"/tasks/{task['task_id']}/task_actions/complete", report),     # report B's task
        ("POST", f"/tasks/{task['task_id']}/task_actions/reset", report),
        ("POST", f"/tasks/{task['task_id']}/task_actions/failed", report),
        ("POST", f"/tasks/{task['task_id']}/logs", {"instance_id": task["instance_id"], "name": "stdout"}),
        ("POST", f"/tasks/{task['task_id']}/task_stats", {"pilot_id": b.result}),
    ]
    for method, path, body in refusals:
        status, doc = await call(server, a.token, method, path, body)
        assert (status, doc.get("reason")) == (403, Reason.OTHER_PILOT.value), (method, path, doc)
    stored = await server.store.get_task(task["task_id"])
    assert (stored.status, stored.pilot_id) == ("processing", b.result)  # nothing A sent changed B's task
    assert (await server.store.get_pilot(b.result)).state == "active"
    # B's own token does all of it
    status, doc = await call(server, b.token, "POST", f"/tasks/{task['task_id']}/task_actions/complete", report)
    assert (status, doc) == (200, {"status": "complete"})
    # A system token (IceProd-style pilots) still acts for any pilot
    system = server.token("cron", role="system")
    status, beat = await call(server, system, "PATCH", f"/pilots/{a.result}", {"tasks": []})
    assert status == 200 and HeartbeatReply.parse(beat).token


async def test_an_expired_pilot_token_is_refused_but_a_heartbeat_before_expiry_renews_it(server):
    await make_dataset(server.store)
    tokens = server.app[TOKENS]
    pilot_id = (await register(server, tokens.create_bootstrap(600))).result
    expired = tokens.create_for_pilot(pilot_id, -30)  # past the 5 s clock leeway
    for method, path, body in (("PATCH", f"/pilots/{pilot_id}", {"tasks": []}),
                               ("POST", "/task_actions/process", claim_body(pilot_id))):
        status, doc = await call(server, expired, method, path, body)
        assert status == 401 and "expired" in doc["error"].lower(), doc
    short = tokens.create_for_pilot(pilot_id, 30)
    status, doc = await call(server, short, "PATCH", f"/pilots/{pilot_id}", {"tasks": []})
    beat = HeartbeatReply.parse(doc)
    assert status == 200 and beat.token and beat.token != short
    assert beat.token_expires is not None and beat.token_expires > time.time() + 30 + 1
    assert tokens.identify(beat.token).pilot_id == pilot_id
    status, task = await call(server, beat.token, "POST", "/task_actions/process", claim_body(pilot_id))
    assert status == 200, task


async def test_the_bound_token_lives_at_least_a_lease_and_a_heartbeat(server):
    settings = server.settings
    settings.pilot_token_seconds = 1
    assert settings.pilot_token_lifetime == int(settings.lease_seconds + settings.heartbeat_interval)
    settings.pilot_token_seconds = 7200
    assert settings.pilot_token_lifetime == 7200
