"""Pilot registration, heartbeat, drain and exit (DESIGN.md §3.2, §3.5), and
the per-pilot policies the task routes apply (claim rate, failure budgets).

A heartbeat is also how a pilot learns which of its tasks it still holds: the
reply lists the task ids whose leases were renewed, so a pilot that was slow
(its tasks were reaped and handed to someone else) abandons the others
instead of finishing work nobody will accept.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from aiohttp import web

from common.resources import Resources
from server.api.errors import bad_request, not_found
from server.api.params import json_reply
from server.api.routing import ApiRoutes, QueryParam, caller
from server.keys import BODY, SETTINGS, STORE
from server.store import AttemptResult, FailureClass, NewPilot, RetryPolicy, Store
from server.settings import Settings

routes = ApiRoutes("pilots")

PILOT_ROLES = {"admin", "system"}
ID_PATTERN = "^[A-Za-z0-9_.-]{1,64}$"

RESOURCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cpu": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "gpu": {"type": "integer", "minimum": 0, "maximum": 100_000},
        "memory": {"type": "number", "minimum": 0, "maximum": 1e9},
        "disk": {"type": "number", "minimum": 0, "maximum": 1e12},
        "time": {"type": "number", "minimum": -1e6, "maximum": 1e6},
    },
    "additionalProperties": False,
}
"""cpu/gpu counts, memory/disk GB, time = hours of lifetime left (may be < 0 at the very end).
Bounded so that no number can overflow a database integer."""
OS_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "string", "maxLength": 200},
                                       {"type": "array", "items": {"type": "string", "maxLength": 200},
                                        "maxItems": 100}]}
TEXT = {"type": "string", "maxLength": 1000}

REGISTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resources": {**RESOURCE_SCHEMA, "required": ["cpu", "memory", "disk"]},
        "site": TEXT, "hostname": TEXT, "os": OS_SCHEMA, "provider": TEXT, "provider_job_id": TEXT,
        "version": TEXT,
        "pilot_id": {"type": "string", "pattern": ID_PATTERN},
    },
    "required": ["resources"],
    "additionalProperties": False,
}
HEARTBEAT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "free": RESOURCE_SCHEMA,
        "resources": RESOURCE_SCHEMA,
        "tasks": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 10_000},
        "drain": {"type": "boolean"},
    },
    "additionalProperties": False,
}


def os_list(value: str | list[str] | None) -> list[str]:
    """``os`` may be one string (as in requirements) or a list."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def retry_policy(settings: Settings) -> RetryPolicy:
    """The failure budgets and escalation caps every report path uses."""
    return RetryPolicy(max_retries=settings.max_retries, max_infra_failures=settings.max_infra_failures,
                       caps={"memory": settings.max_memory_gb, "disk": settings.max_disk_gb,
                             "time": settings.max_time_hours})


async def release_pilot_tasks(store: Store, settings: Settings, task_ids: list[str], pilot_id: str,
                              reason: str) -> list[str]:
    """Give back tasks a departing pilot still holds, as infrastructure
    failures, so they are retried at once instead of after the lease."""
    released = []
    for task_id in task_ids:
        task = await store.get_task(task_id)
        if task is None or task.status != "processing" or task.pilot_id != pilot_id or not task.instance_id:
            continue
        result = AttemptResult(failure_class=FailureClass.INFRA, kind="pilot-lost", reason=reason)
        outcome = await store.reset(task_id, task.instance_id, result, retry_policy(settings))
        if outcome.applied:
            released.append(task_id)
            await store.rollup_jobs([task.job_id])
            await store.rollup_dataset(task.dataset_id)
    return released


class TokenBucket:
    """Per-pilot claim rate limit: a pilot may burst one second's worth of
    claims, then ``rate`` per second. The server tells an eager pilot when to
    come back (429 + Retry-After) instead of pilots sleeping blindly."""

    def __init__(self, rate: float, max_keys: int = 100_000):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when a claim may go ahead (and is counted), else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # most recently used last
        while len(self._buckets) > self.max_keys:  # forget the pilots idle longest
            self._buckets.popitem(last=False)
        return wait


@routes.post("/pilots", summary="register a pilot with its slot's total resources", roles=PILOT_ROLES,
             pilot=True, body=REGISTER_SCHEMA, responses={201: "created: {\"result\": pilot_id}"})
async def register(request: web.Request) -> web.Response:
    body = request[BODY]
    try:
        Resources.from_requirements(body["resources"])
    except ValueError as exc:
        raise bad_request(f"key 'resources': {exc}") from None
    store = request.app[STORE]
    pilot_id = body.get("pilot_id")
    if pilot_id and await store.get_pilot(pilot_id) is not None:
        # a retried registration (RestClient retries POSTs) must not fail
        return json_reply({"result": pilot_id}, status=201)
    new = NewPilot(resources=dict(body["resources"]), site=body.get("site", ""), hostname=body.get("hostname", ""),
                   os=os_list(body.get("os")), provider=body.get("provider", ""),
                   provider_job_id=body.get("provider_job_id", ""), version=body.get("version", ""))
    if pilot_id:
        new.pilot_id = pilot_id
    return json_reply({"result": await store.register_pilot(new)}, status=201)


@routes.patch("/pilots/{pilot_id}", summary="heartbeat: free resources and running tasks; renews their leases",
              roles=PILOT_ROLES, pilot=True, body=HEARTBEAT_SCHEMA)
async def heartbeat(request: web.Request) -> web.Response:
    body = request[BODY]
    pilot_id = request.match_info["pilot_id"]
    store = request.app[STORE]
    settings = request.app[SETTINGS]
    if "drain" in body:
        if not await store.set_pilot_drain(pilot_id, body["drain"]):
            raise not_found(f"pilot {pilot_id} not found")
    free = body.get("free", body.get("resources"))
    tasks = list(body.get("tasks", []))
    reply = await store.pilot_heartbeat(pilot_id, free, tasks)
    if not reply.found:
        raise not_found(f"pilot {pilot_id} not found: register again with POST /pilots")
    pilot = await store.get_pilot(pilot_id)
    if pilot is not None and pilot.state == "lost":  # silent for a while (network cut), but alive
        await store.set_pilot_state(pilot_id, "active")
    held = await store.renew_leases(pilot_id, tasks, settings.lease_seconds) if tasks else []
    return json_reply({"drain": reply.drain, "tasks": held, "lease_seconds": settings.lease_seconds,
                       "heartbeat_seconds": settings.heartbeat_seconds})


@routes.delete("/pilots/{pilot_id}", summary="a pilot exits; tasks it still holds go back to the queue at once",
               roles=PILOT_ROLES, pilot=True)
async def delete(request: web.Request) -> web.Response:
    pilot_id = request.match_info["pilot_id"]
    store = request.app[STORE]
    pilot = await store.get_pilot(pilot_id)
    if pilot is None:
        raise not_found(f"pilot {pilot_id} not found")
    released = await release_pilot_tasks(store, request.app[SETTINGS], list(pilot.tasks), pilot_id,
                                         f"pilot {pilot_id} exited while holding the task")
    await store.delete_pilot(pilot_id)
    return json_reply({"released": released})


@routes.get("/pilots", summary="registered pilots as {pilot_id: doc}", roles=PILOT_ROLES, pilot=True,
            query=[QueryParam("site", "only pilots of this site"),
                   QueryParam("state", "active | lost | exited")])
async def list_pilots(request: web.Request) -> web.Response:
    caller(request)
    state = request.query.get("state") or None
    if state is not None and state not in {"active", "lost", "exited"}:
        raise bad_request(f"unknown pilot state {state!r}; expected one of active, exited, lost")
    pilots = await request.app[STORE].list_pilots(site=request.query.get("site") or None, state=state)
    return json_reply({p.pilot_id: p.to_doc() for p in pilots})


@routes.get("/pilots/{pilot_id}", summary="one pilot", roles=PILOT_ROLES, pilot=True)
async def get_pilot(request: web.Request) -> web.Response:
    pilot_id = request.match_info["pilot_id"]
    pilot = await request.app[STORE].get_pilot(pilot_id)
    if pilot is None:
        raise not_found(f"pilot {pilot_id} not found")
    return json_reply(pilot.to_doc())
