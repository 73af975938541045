"""The pilot's task life cycle: claim, processing, complete, reset, failed.

Every report carries the ``instance_id`` the claim handed out. The store
applies a report only to that claim, so a pilot that lost its task (lease
reaped, task re-claimed elsewhere) gets 409 and changes nothing: a task
completes exactly once. After each applied report the job and dataset
statuses are rolled up at once (no late cron), consumed core-hours feed fair
share, and a job that just completed has its scratch files removed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable

from aiohttp import web

from common import errors as failure_rules
from common.resources import Resources
from server.api.errors import ApiError, bad_request, not_found
from server.api.params import json_reply
from server.api.pilots import OS_SCHEMA, RESOURCE_SCHEMA, TEXT, TokenBucket, os_list, retry_policy
from server.api.routing import ApiRoutes
from server.api.scratch import cleanup_job_scratch
from server.keys import BODY, SERVICES, SETTINGS, STORE
from server.settings import Settings
from server.store import (
    AttemptResult, ClaimedTask, ClaimRequest, Dataset, FailureClass, JobFilter, ListOptions, Outcome, OutputFile,
    ReportOutcome, Store, Task,
)
from server.store.rules import INFRA_KINDS
from server.federation.claim import pelican_claim_fields

log = logging.getLogger("frazil.server.task_actions")
routes = ApiRoutes("task_actions")
PILOT_ROLES = {"admin", "system"}

CLAIM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pilot_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "resources": {**RESOURCE_SCHEMA, "required": ["cpu", "memory", "disk", "time"]},
        "os": OS_SCHEMA, "site": TEXT, "hostname": TEXT,
    },
    "required": ["pilot_id", "resources"],
    "additionalProperties": False,
}
NUMBER_OR_NULL = {"type": ["number", "null"], "minimum": -1e12, "maximum": 1e12}
"""Bounded so no value can overflow a database integer or a float conversion."""
STRING_OR_NULL = {"type": ["string", "null"], "maxLength": 1_000_000}
EXIT_CODE = {"type": "integer", "minimum": -1_000_000, "maximum": 1_000_000}
RECORD_LIST = {"type": "array", "items": {"type": "object"}, "maxItems": 100_000}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "instance_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "time_used": {"type": ["number", "null"], "minimum": 0, "maximum": 1e9},
        "resources": {"type": "object", "additionalProperties": NUMBER_OR_NULL},
        "site": TEXT, "hostname": TEXT, "host": TEXT,
        "outputs": {"type": "array", "maxItems": 100_000, "items": {
            "type": "object", "required": ["url"],
            "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 4096},
                           "size": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**62},
                           "sha512": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{128}$"}}}},
        "inputs": RECORD_LIST, "modules": RECORD_LIST,
        "exit_codes": {"type": "array", "items": EXIT_CODE, "maxItems": 100_000},
        "exit_code": {"type": ["integer", "null"], "minimum": -1_000_000, "maximum": 1_000_000},
        "signal": {"type": ["integer", "null"], "minimum": 1, "maximum": 128},
        "class": {"enum": ["physics", "non-physics", "nonphysics", "infra", None]},
        "failure_class": {"enum": ["physics", "non-physics", "nonphysics", "infra", None]},
        "kind": STRING_OR_NULL, "rule": STRING_OR_NULL, "reason": STRING_OR_NULL,
        "stdout": STRING_OR_NULL, "stderr": STRING_OR_NULL, "stdlog": STRING_OR_NULL,
        "status": TEXT, "action": STRING_OR_NULL, "workdir": STRING_OR_NULL,
        "start": NUMBER_OR_NULL, "end": NUMBER_OR_NULL,
        "version": TEXT, "frazil_version": TEXT,
    },
    "required": ["instance_id"],
    "additionalProperties": False,
}
"""Accepts IceProd's terse bodies and the pilot's full ``TaskResult.to_dict()``."""
PROCESSING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"instance_id": {"type": "string", "minLength": 1, "maxLength": 64}, "site": TEXT},
    "required": ["instance_id"],
    "additionalProperties": False,
}


class ClaimCache:
    """Config versions are immutable, so a claim need not re-read, re-parse
    and re-serialise the config each time (it is kept as JSON text); dataset
    fields a pilot needs (number, jobs_submitted, debug) are cached for a few
    seconds only, as jobs_submitted may grow."""

    def __init__(self, max_configs: int = 256, dataset_ttl: float = 5.0):
        self.max_configs = max_configs
        self.dataset_ttl = dataset_ttl
        self._configs: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._latest: dict[str, tuple[float, int | None]] = {}
        self._datasets: dict[str, tuple[float, Dataset | None]] = {}

    async def config_json(self, store: Store, dataset_id: str, version: int | None) -> tuple[int | None, str]:
        """(version, the config as JSON text; "null" when there is none)."""
        now = time.monotonic()
        if version is None:  # a task without a recorded version runs the newest
            cached = self._latest.get(dataset_id)
            if cached is not None and now - cached[0] < self.dataset_ttl:
                version = cached[1]
        if version is not None and (dataset_id, version) in self._configs:
            self._configs.move_to_end((dataset_id, version))
            return version, self._configs[(dataset_id, version)]
        found = await store.get_config(dataset_id, version)
        if found is None:
            return version, "null"
        if version is None:
            self._latest[dataset_id] = (now, found.version)
        text = json.dumps(found.config, separators=(",", ":"), default=str)
        self._configs[(dataset_id, found.version)] = text
        while len(self._configs) > self.max_configs:
            self._configs.popitem(last=False)
        return found.version, text

    async def _dataset(self, store: Store, dataset_id: str) -> Dataset | None:
        now = time.monotonic()
        cached = self._datasets.get(dataset_id)
        if cached is not None and now - cached[0] < self.dataset_ttl:
            return cached[1]
        dataset = await store.get_dataset(dataset_id)
        if len(self._datasets) > 10_000:
            self._datasets.clear()
        self._datasets[dataset_id] = (now, dataset)
        return dataset

    async def dataset(self, store: Store, dataset_id: str) -> dict[str, Any]:
        """The runtime values a pilot needs for macros."""
        dataset = await self._dataset(store, dataset_id)
        if dataset is None:
            return {"dataset": None, "jobs_submitted": None, "debug": False}
        return {"dataset": dataset.dataset, "jobs_submitted": dataset.jobs_submitted, "debug": dataset.debug}

    async def owner(self, store: Store, dataset_id: str) -> tuple[str, str] | None:
        """(username, group) charged for the dataset's consumed core-hours."""
        dataset = await self._dataset(store, dataset_id)
        return None if dataset is None else (dataset.username, dataset.group)


class UsageMeter:
    """Consumed core-hours for fair share, written to the store at most once a
    second (one write per user and group) instead of once per report. A crash
    loses at most that second of accounting, never a task."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.pending: dict[tuple[str, str], float] = {}
        self.flushed = -math.inf
        self.lock = asyncio.Lock()

    async def add(self, store: Store, username: str, group: str, core_hours: float) -> None:
        key = (username, group)
        self.pending[key] = self.pending.get(key, 0.0) + core_hours
        if time.monotonic() - self.flushed < self.interval or self.lock.locked():
            return
        async with self.lock:
            self.flushed = time.monotonic()
            pending, self.pending = self.pending, {}
            for (user, grp), hours in pending.items():
                try:
                    await store.add_usage(user, grp, hours)
                except Exception:  # the report is applied; accounting is retried with the next flush
                    log.exception("could not record %.3f core-hours of %s/%s", hours, user, grp)
                    self.pending[(user, grp)] = self.pending.get((user, grp), 0.0) + hours


def scratch_base(settings: Settings, request: web.Request) -> str:
    """Where job_temp/dataset_temp files go when the config names no site_temp:
    the configured store, else this server at the address the pilot reached
    it by (a server bound to 0.0.0.0 has no better name for itself)."""
    if settings.scratch_url:
        return settings.scratch_url
    return (settings.public_url or str(request.url.origin())).rstrip("/") + "/scratch"


async def _task_files(store: Store, task: Any, config_text: str) -> list[dict[str, Any]]:
    """Per-job files (``/datasets/{id}/files``) for tasks that use them, as data
    entries for ``JobContext.task_files``. Only configs that mention
    ``task_files: true`` (compact JSON text) cost a query on the claim path."""
    if '"task_files":true' not in config_text:
        return []
    files = await store.list_files(task.dataset_id, task.task_id)
    return [{"remote": f.remote, "local": f.local, "type": f.type, "movement": f.movement, "transfer": f.transfer}
            for f in files]


async def claim_reply(store: Store, cache: ClaimCache, settings: Settings, claimed: ClaimedTask,
                      scratch_url: str) -> web.Response:
    """The claimed task plus everything a pilot needs to build its TaskPlan
    (``common.plan.build_task_plan``) without another call. The cached
    config text is spliced in rather than serialised again for every claim."""
    task = claimed.task
    version, config_text = await cache.config_json(store, task.dataset_id, task.config_version)
    doc = task.to_doc()
    doc.update(await cache.dataset(store, task.dataset_id))
    doc.update(instance_id=claimed.instance_id, attempt=claimed.attempt, lease_expires=claimed.lease_expires,
               lease_seconds=settings.lease_seconds, heartbeat_seconds=settings.heartbeat_seconds,
               config_version=version, scratch_url=scratch_url, files=await _task_files(store, task, config_text),
               **pelican_claim_fields(settings))
    head = json.dumps(doc, separators=(",", ":"), default=str)
    return web.Response(body=f'{head[:-1]},"config":{config_text}}}'.encode(), content_type="application/json")


# ---------------------------------------------------------------- reports

_CLASS_NAMES = {"physics": FailureClass.PHYSICS, "non-physics": FailureClass.NONPHYSICS,
                "nonphysics": FailureClass.NONPHYSICS, "infra": FailureClass.INFRA}
_EVIDENCE_KEYS = ("exit_code", "signal", "stderr", "stdout", "stdlog")


def _last_module_exit(body: dict[str, Any]) -> tuple[int | None, int | None]:
    for module in reversed(body.get("modules") or []):
        code, sig = module.get("exit_code"), module.get("signal")
        if isinstance(code, int) and not isinstance(code, bool) or isinstance(sig, int) and not isinstance(sig, bool):
            return (code if isinstance(code, int) else None), (sig if isinstance(sig, int) else None)
    return None, None


def classify_report(body: dict[str, Any], physics_route: bool) -> tuple[FailureClass, str, str, str]:
    """Class, kind, rule and reason of a failure report (DESIGN.md §3.4).

    A pilot that classified its failure says so (``class``) and is believed.
    A pilot that sent only raw evidence (exit code, signal, output tails, a
    kill hint) is classified here with the same rules (``common.errors``).
    A terse IceProd-style report (reason at most) is classified by its route:
    reset = non-physics, failed = physics.
    """
    kind = body.get("kind") or ""
    rule = body.get("rule") or ""
    reason = body.get("reason") or ""
    given = body.get("class") or body.get("failure_class")
    if given:
        fclass = _CLASS_NAMES[given]
        if fclass is FailureClass.NONPHYSICS and kind in INFRA_KINDS:
            fclass = FailureClass.INFRA
        return fclass, kind, rule, reason
    hint = kind if kind in failure_rules.HINTS else None
    if hint is not None or any(body.get(key) not in (None, "") for key in _EVIDENCE_KEYS) or body.get("modules"):
        exit_code, sig = body.get("exit_code"), body.get("signal")
        if exit_code is None and sig is None:
            exit_code, sig = _last_module_exit(body)
        evidence = failure_rules.FailureEvidence(
            exit_code=exit_code, signal=sig, stderr_tail=body.get("stderr") or "",
            stdout_tail=body.get("stdout") or "", stdlog_tail=body.get("stdlog") or "", reason=reason,
            kind_hint=hint)
        try:
            found = failure_rules.classify(evidence)
        except failure_rules.RulesError as exc:  # an operator's broken rules file: keep the route's verdict
            log.error("failure rules unusable, classifying by route: %s", exc)
        else:
            if found.failure_class == "physics":
                return FailureClass.PHYSICS, found.kind, found.rule or "", found.reason
            infra = found.infrastructure or found.kind in INFRA_KINDS
            fclass = FailureClass.INFRA if infra else FailureClass.NONPHYSICS
            return fclass, found.kind, found.rule or "", found.reason
    if physics_route:
        return FailureClass.PHYSICS, kind, rule, reason
    return (FailureClass.INFRA if kind in INFRA_KINDS else FailureClass.NONPHYSICS), kind, rule, reason


def _outputs(body: dict[str, Any]) -> list[OutputFile]:
    """Delivered outputs, for provenance; skipped optional outputs are left out."""
    files = []
    for index, entry in enumerate(body.get("outputs") or []):
        if entry.get("skipped") or entry.get("ok") is False:
            continue
        if entry.get("size") is None or not entry.get("sha512"):
            raise bad_request(f"key 'outputs'[{index}]: a delivered output needs its size and sha512")
        files.append(OutputFile(url=entry["url"], size=int(entry["size"]), sha512=entry["sha512"].lower()))
    return files


def _finite(body: dict[str, Any]) -> None:
    """JSON parsers accept NaN, which passes every range check; refuse it."""
    values = [("time_used", body.get("time_used"))]
    values += [(f"resources.{k}", v) for k, v in (body.get("resources") or {}).items()]
    for name, value in values:
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_request(f"key {name!r}: {value} is not a number")


def report_result(body: dict[str, Any], *, failure_class: FailureClass | None = None, kind: str = "",
                  rule: str = "", reason: str = "") -> AttemptResult:
    """The store's record of a report; peaks with no value are dropped."""
    _finite(body)
    exit_codes = list(body.get("exit_codes") or [])
    if not exit_codes:
        exit_codes = [m["exit_code"] for m in body.get("modules") or []
                      if isinstance(m.get("exit_code"), int) and not isinstance(m.get("exit_code"), bool)]
    return AttemptResult(
        time_used=body.get("time_used"),
        resources={k: v for k, v in (body.get("resources") or {}).items() if v is not None},
        site=body.get("site", ""), host=body.get("hostname") or body.get("host") or "",
        failure_class=failure_class, kind=kind, rule=rule, reason=reason,
        modules=list(body.get("modules") or []), exit_codes=exit_codes,
        inputs=list(body.get("inputs") or []), outputs=_outputs(body),
        frazil_version=body.get("frazil_version") or body.get("version") or "")


def _service(app: web.Application, name: str, factory: Any) -> Any:
    services = app[SERVICES]
    if name not in services:
        services[name] = factory()
    return services[name]


def _retry_after(settings: Any) -> str:
    """Idle pilots come back after about two queueing rounds: sooner only adds load."""
    return str(max(1, math.ceil(2 * settings.loop_interval_seconds)))


@routes.post("/task_actions/process", summary="claim one queued task that fits the pilot's free resources",
             roles=PILOT_ROLES, pilot=True, body=CLAIM_SCHEMA,
             responses={404: "nothing fits now (see Retry-After)", 429: "claiming too fast (see Retry-After)"})
async def process(request: web.Request) -> web.Response:
    body = request[BODY]
    app = request.app
    settings = app[SETTINGS]
    pilot_id = body["pilot_id"]
    limiter: TokenBucket = _service(app, "claim_limiter", lambda: TokenBucket(settings.claim_rate_per_pilot))
    wait = limiter.take(pilot_id)
    if wait > 0:
        raise ApiError(429, f"pilot {pilot_id} is claiming faster than {settings.claim_rate_per_pilot:g}/s",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
    try:
        free = Resources(**{k: int(v) if k in ("cpu", "gpu") else v for k, v in body["resources"].items()})
    except (TypeError, ValueError) as exc:
        raise bad_request(f"key 'resources': {exc}") from None
    store = app[STORE]
    pilot = await store.get_pilot(pilot_id)
    if pilot is None:
        raise bad_request(f"unknown pilot_id {pilot_id!r}: register with POST /pilots first")
    if pilot.state == "lost":  # it was only silent (a network cut): it is evidently alive
        await store.set_pilot_state(pilot_id, "active")
    elif pilot.state != "active":
        raise ApiError(404, f"pilot {pilot_id} has {pilot.state}: no new tasks")
    if pilot.drain:
        raise ApiError(404, f"pilot {pilot_id} is draining: no new tasks",
                       headers={"Retry-After": _retry_after(settings)})
    claim = ClaimRequest(pilot_id=pilot_id, free=free, os=os_list(body.get("os")) or list(pilot.os),
                         site=body.get("site", pilot.site), lease_seconds=settings.lease_seconds,
                         host=body.get("hostname", pilot.hostname))
    claimed = await store.claim(claim)
    if claimed is None:
        raise ApiError(404, "no queued task fits these resources", headers={"Retry-After": _retry_after(settings)})
    cache: ClaimCache = _service(app, "claim_cache", ClaimCache)
    return await claim_reply(store, cache, settings, claimed, scratch_base(settings, request))


async def _task_or_404(request: web.Request) -> Task:
    task_id = request.match_info["task_id"]
    task = await request.app[STORE].get_task(task_id)
    if task is None:
        raise not_found(f"task {task_id} not found")
    return task


def _stale(task_id: str) -> ApiError:
    return ApiError(409, f"stale instance_id for task {task_id}: this claim no longer holds the task "
                         "(it was reaped, reset or re-claimed); drop this result")


def _check_outcome(task_id: str, outcome: ReportOutcome) -> None:
    if outcome.outcome is Outcome.NOT_FOUND:
        raise not_found(f"task {task_id} not found")
    if outcome.outcome is Outcome.STALE:
        raise _stale(task_id)


@routes.post("/tasks/{task_id}/task_actions/processing", summary="the pilot started the claimed task",
             roles=PILOT_ROLES, pilot=True, body=PROCESSING_SCHEMA, responses={409: "stale instance_id"})
async def processing(request: web.Request) -> web.Response:
    """Claims are already ``processing``; this acknowledges (and renews the
    lease), and still moves a ``queued`` task with this instance_id as IceProd did."""
    task = await _task_or_404(request)
    instance_id = request[BODY]["instance_id"]
    store = request.app[STORE]
    if task.instance_id != instance_id:
        raise _stale(task.task_id)
    if task.status == "processing":
        await store.renew_leases(task.pilot_id, [task.task_id], request.app[SETTINGS].lease_seconds)
    elif not await store.set_task_status(task.task_id, "processing", instance_id=instance_id):
        raise _stale(task.task_id)
    # no roll-up: queued -> processing cannot change what the job's tasks imply
    return json_reply(task.to_doc())


async def _dataset_may_change(store: Store, dataset_id: str) -> bool:
    """False when another job is still processing in a processing dataset:
    its status is then "processing" whatever this job became. Two index
    lookups instead of counting every job of a million-job dataset."""
    dataset = await store.get_dataset(dataset_id)
    if dataset is None:
        return False
    if dataset.status != "processing":
        return True
    running = await store.list_jobs(JobFilter(dataset_id=dataset_id, status=["processing"]),
                                    ListOptions(limit=1, keys=["job_id"]))
    return not running.rows


async def _roll_up(app: web.Application, task: Task) -> dict[str, str]:
    """Job status at once; the dataset's only when a job changed (its status
    depends on job statuses alone, and counting a big dataset's jobs on every
    report would make the report cost grow with the dataset)."""
    store = app[STORE]
    changes = await store.rollup_jobs([task.job_id])
    if changes and await _dataset_may_change(store, task.dataset_id):
        await store.rollup_dataset(task.dataset_id)
    if changes.get(task.job_id) == "complete":
        try:
            await cleanup_job_scratch(app, task.dataset_id, task.job_index)
        except OSError:  # a leftover scratch file must not turn a good report into an error
            log.exception("scratch cleanup of dataset %s job %s failed", task.dataset_id, task.job_index)
    return changes


async def _apply_report(request: web.Request, apply: Callable[[], Awaitable[ReportOutcome]],
                        time_used: float | None) -> tuple[Task, ReportOutcome]:
    """Run a fenced store report, then roll up and count fair-share usage.

    The store answers a repeated report (clients retry POSTs) "applied"
    again; only a report that found the claim still holding the task counts
    the consumed core-hours."""
    app = request.app
    store = app[STORE]
    task = await _task_or_404(request)
    instance_id = request[BODY]["instance_id"]
    first = task.status == "processing" and task.instance_id == instance_id
    outcome = await apply()
    _check_outcome(task.task_id, outcome)
    await _roll_up(app, task)
    if first and time_used:
        owner = await _service(app, "claim_cache", ClaimCache).owner(store, task.dataset_id)
        try:
            cores = Resources.from_requirements(task.requirements).cpu
        except ValueError:
            cores = 1
        if owner is not None:
            meter: UsageMeter = _service(app, "usage_meter", UsageMeter)
            await meter.add(store, owner[0], owner[1], max(cores, 1) * time_used / 3600.0)
    return task, outcome


@routes.post("/tasks/{task_id}/task_actions/complete", summary="the attempt succeeded; record outputs for provenance",
             roles=PILOT_ROLES, pilot=True, body=REPORT_SCHEMA, responses={409: "stale instance_id"})
async def complete(request: web.Request) -> web.Response:
    task_id = request.match_info["task_id"]
    body = request[BODY]
    result = report_result(body)
    store = request.app[STORE]
    _, outcome = await _apply_report(request, lambda: store.complete(task_id, body["instance_id"], result),
                                     result.time_used)
    return json_reply({"status": outcome.status or "complete"})


async def _failure(request: web.Request, physics_route: bool) -> web.Response:
    task_id = request.match_info["task_id"]
    body = request[BODY]
    app = request.app
    fclass, kind, rule, reason = classify_report(body, physics_route)
    result = report_result(body, failure_class=fclass, kind=kind, rule=rule, reason=reason)
    store = app[STORE]
    policy = retry_policy(app[SETTINGS])
    report = store.fail if fclass is FailureClass.PHYSICS else store.reset
    task, outcome = await _apply_report(request, lambda: report(task_id, body["instance_id"], result, policy),
                                        result.time_used)
    requirements = dict(task.requirements)
    requirements.update({name: change["new"] for name, change in outcome.requirement_changes.items()})
    return json_reply({
        "status": outcome.status,
        "class": "physics" if fclass is FailureClass.PHYSICS else "non-physics",
        "infrastructure": fclass is FailureClass.INFRA,
        "kind": kind, "rule": rule, "reason": reason,
        "requirement_changes": outcome.requirement_changes,
        "requirements": requirements,
    })


@routes.post("/tasks/{task_id}/task_actions/reset", summary="non-physics failure: retry (escalating what ran out)",
             roles=PILOT_ROLES, pilot=True, body=REPORT_SCHEMA, responses={409: "stale instance_id"})
async def reset(request: web.Request) -> web.Response:
    return await _failure(request, physics_route=False)


@routes.post("/tasks/{task_id}/task_actions/failed", summary="physics failure: the task fails",
             roles=PILOT_ROLES, pilot=True, body=REPORT_SCHEMA, responses={409: "stale instance_id"})
async def failed(request: web.Request) -> web.Response:
    return await _failure(request, physics_route=True)
