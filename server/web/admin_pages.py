"""The admin dashboard (admin role only): pilots, the queue by resource class
and site, providers, users and groups with editable priorities, error
classes across datasets, and server health."""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from aiohttp import web

from common.version import __version__
from server.credentials.service import public_doc
from server.keys import BACKGROUND, CLAIM_CACHE, LOG_RETENTION, MATCHABLE, PROVIDER, SETTINGS, STORE
from server.store import ListOptions, TaskFilter
from server.store.records import ACTION_STATUSES
from server.scheduling.actions import ACTIONS
from server.scheduling import forecast
from server.scheduling.backlog import storage_hold
from server.scheduling import quarantine
from server.scheduling.retention import retention_summary
from server.web import plots
from server.web.framework import PageError, PageRoutes, form_data, render, session_of, state
from server.web.history import history

routes = PageRoutes()
FAILED_SAMPLE = 200


def _priority(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise PageError(400, f"priority must be a number between 0 and 1, got {raw!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise PageError(400, f"priority must be between 0 and 1, got {raw!r}")
    return value


def provider_summary(app: web.Application, pilots: list[Any]) -> dict[str, Any]:
    """The provider's own counts (submitted / idle / running / held / done, as the
    batch system sees them) and the registered pilots by provider and state
    (as the server sees them)."""
    provider = app.get(PROVIDER)
    counts = provider.counts().to_doc() if provider is not None else None
    states: dict[str, Counter[str]] = {}
    for pilot in pilots:
        state = pilot.state if pilot.state != "active" else ("busy" if pilot.tasks else "registered")
        states.setdefault(pilot.provider or "(unknown)", Counter())[state] += 1
    return {"name": provider.name if provider is not None else "none", "counts": counts,
            "by_provider": {k: dict(v) for k, v in sorted(states.items())}}


async def error_classes(app: web.Application) -> list[tuple[str, str, str, int]]:
    """(class, kind, rule, count) over the last attempts of the most recently failed tasks."""
    store = app[STORE]
    failed = (await store.list_tasks(TaskFilter(status=["failed"]),
                                     ListOptions(keys=("dataset_id",), limit=FAILED_SAMPLE,
                                                 sort=[("status_changed", -1)]))).rows
    counts: Counter[tuple[str, str, str]] = Counter()
    for row in failed:
        attempts = await store.get_attempts(row["task_id"])
        if attempts:
            last = attempts[-1]
            counts[(last.failure_class or "unknown", last.kind, last.rule)] += 1
    return [(*key, n) for key, n in counts.most_common()]


@routes.page("/admin", admin=True)
async def admin(request: web.Request) -> web.StreamResponse:
    app = request.app
    store = app[STORE]
    keeper = history(app)
    await keeper.sample(app)
    pilots = await store.list_pilots()
    active = [p for p in pilots if p.state == "active"]
    queue = await store.queued_classes()
    by_class = Counter[str]()
    by_site = Counter[str]()
    for entry in queue:
        by_class[entry.resource_class] += entry.queued
        by_site[entry.site or "(any)"] += entry.queued
    # Both scan every task of the install: shared snapshots, like a dataset's counts.
    shared = state(app).snapshots
    task_counts, _ = await shared.get("admin:tasks", lambda: store.task_counts_by_status(TaskFilter()))
    errors, _ = await shared.get("admin:errors", lambda: error_classes(app))
    hours_left, _ = await shared.get("admin:hours_left", lambda: forecast.install_hours_left(store))
    health = {"version": __version__, "store": store.backend, "uptime_s": round(time.time() - keeper.started),
              "services": sorted(name for name, key in BACKGROUND if key in app), "active pilots": len(active), "tasks": task_counts}
    actions = {name: await store.action_counts(name) for name in ACTIONS}
    refreshable = await store.credentials_to_refresh(math.inf, -math.inf, limit=1000)
    refresh_failures = [public_doc(c) for c in refreshable if c.refresh_error]
    retention, _ = await shared.get("admin:retention",
                                    lambda: retention_summary(store, app[SETTINGS], app.get(LOG_RETENTION)))
    # job creation stopped for every dataset while the store's disk or WAL is past its limit
    storage_held = await storage_hold(store, app[SETTINGS])
    matchable = app.get(MATCHABLE)
    return render(request, "admin.html", pilots=active, now=time.time(), queue=queue, storage_held=storage_held,
                  unmatchable=matchable.snapshot.summary() if matchable else [],
                  provider=provider_summary(app, pilots), users=await store.list_users(),
                  groups=await store.list_groups(), usage=await store.list_usage(),
                  errors=errors, hours_left=hours_left, health=health, retention=retention, actions=actions,
                  quarantines=await quarantine.list_active(store),
                  refresh_failures=refresh_failures,
                  action_statuses=ACTION_STATUSES, message=request.query.get("message", ""),
                  pilots_plot=plots.line_chart(keeper.series("pilots_by_site"), title="Running pilots by site",
                                               y_label="pilots"),
                  queue_plot=plots.line_chart(keeper.series("queued_by_class"),
                                              title="Queued tasks by resource class", y_label="tasks"),
                  class_bars=plots.bars(dict(by_class), title="Queued now by resource class"),
                  site_bars=plots.bars(dict(by_site), title="Queued now by site"))


async def _set_priority(request: web.Request, kind: str) -> web.StreamResponse:
    """Users and groups share the form and the rules (0..1); only the store call differs."""
    value = _priority((await form_data(request)).get("priority", ""))
    name = request.match_info["name"]
    store = request.app[STORE]
    setter = store.set_user_priority if kind == "user" else store.set_group_priority
    if not await setter(name, value):
        raise PageError(404, f"no {kind} {name!r}")
    raise web.HTTPSeeOther(f"/admin?message=priority+of+{kind}+{name}+set#{kind}s")


@routes.page("/admin/users/{name}/priority", method="POST", admin=True)
async def user_priority(request: web.Request) -> web.StreamResponse:
    return await _set_priority(request, "user")


@routes.page("/admin/groups/{name}/priority", method="POST", admin=True)
async def group_priority(request: web.Request) -> web.StreamResponse:
    return await _set_priority(request, "group")


@routes.page("/admin/quarantines/{quarantine_id}/lift", method="POST", admin=True)
async def lift_quarantine(request: web.Request) -> web.StreamResponse:
    lifted = await quarantine.lift(request.app[STORE], request.match_info["quarantine_id"],
                                   session_of(request).identity.username)
    if lifted is None:
        raise PageError(404, f"no quarantine {request.match_info['quarantine_id']!r}")
    request.app[CLAIM_CACHE].quarantines.forget()
    raise web.HTTPSeeOther(f"/admin?message=quarantine+of+{lifted.kind}+{lifted.name}+lifted#quarantines")
