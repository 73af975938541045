"""Typed keys for the objects shared through the aiohttp application and requests.

One ``web.AppKey`` per long-lived object. The keys of the website's own
objects live beside them (``server.web.framework.WEB``,
``server.web.history.HISTORY``); these are the ones services and handlers
share. ``create_app`` builds most of them;
the background services (scheduler, action worker, provider) are built by
their ``cleanup_ctx`` once the store is open, and are simply absent when that
service does not run (read them with ``app.get(KEY)``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from server.auth import Identity, TokenAuthority
    from server.metrics import ServerMetrics
    from server.provisioning.base import Provider
    from server.provisioning.service import Provisioner
    from server.scheduling.action_worker import ActionWorker
    from server.scheduling.claims import ClaimCache, TokenBucket
    from server.scheduling.config_pool import ConfigPool
    from server.scheduling.logs import LogIndex
    from server.scheduling.loops import Scheduler
    from server.scheduling.reports import Reports
    from server.scheduling.retention import LogRetention
    from server.scheduling.service import LoopRunner
    from server.scheduling.work_signal import WorkSignal
    from server.settings import Settings
    from server.store import Store

# built by create_app
SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
STORE: web.AppKey["Store"] = web.AppKey("store")
"""Set by the store's cleanup_ctx (or given to create_app by tests)."""
TOKENS: web.AppKey["TokenAuthority"] = web.AppKey("tokens")
CONFIG_POOL: web.AppKey["ConfigPool"] = web.AppKey("config_pool")
"""Worker processes for CPU-heavy config checks (server.scheduling.config_pool)."""
ROUTE_SPECS: web.AppKey[list[Any]] = web.AppKey("route_specs")
METRICS: web.AppKey["ServerMetrics"] = web.AppKey("metrics")
CLAIM_LIMITER: web.AppKey["TokenBucket"] = web.AppKey("claim_limiter")
CLAIM_CACHE: web.AppKey["ClaimCache"] = web.AppKey("claim_cache")
LOG_INDEX: web.AppKey["LogIndex"] = web.AppKey("log_index")
"""What appending to a live log needs to know, kept in memory."""
REPORTS: web.AppKey["Reports"] = web.AppKey("reports")
"""Applies pilots' reports; holds the fair-share usage meter."""
WORK_SIGNAL: web.AppKey["WorkSignal"] = web.AppKey("work_signal")
"""Wakes claims waiting for work when tasks are queued (one per process)."""

# built by a background service's cleanup_ctx; absent when it does not run
SCHEDULER: web.AppKey["Scheduler"] = web.AppKey("scheduler")
LOOP_RUNNER: web.AppKey["LoopRunner"] = web.AppKey("loop_runner")
LOG_RETENTION: web.AppKey["LogRetention"] = web.AppKey("log_retention")
"""The log-retention loop's state (its counts are on the admin dashboard)."""
ACTION_WORKER: web.AppKey["ActionWorker"] = web.AppKey("action_worker")
PROVIDER: web.AppKey["Provider"] = web.AppKey("provider")
PROVISIONER: web.AppKey["Provisioner"] = web.AppKey("provisioner")
MATCHABLE: web.AppKey["MatchableService"] = web.AppKey("matchable")
"""Which queued classes nothing can run (refreshed by its own loop in every replica)."""
BACKGROUND: tuple[tuple[str, web.AppKey[Any]], ...] = (
    ("scheduler", SCHEDULER), ("loop_runner", LOOP_RUNNER), ("action_worker", ACTION_WORKER),
    ("provider", PROVIDER), ("provisioner", PROVISIONER), ("matchable", MATCHABLE))
"""By name; the admin page lists which of these run."""

IDENTITY: web.RequestKey["Identity"] = web.RequestKey("identity", object)
"""The caller's :class:`server.auth.Identity` (absent = anonymous)."""
BODY: web.RequestKey[Any] = web.RequestKey("body", object)
"""The JSON body, parsed and checked against the route's schema."""
