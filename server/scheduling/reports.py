"""A pilot's reports on its claimed task: processing, complete, reset, failed.

Every report carries the ``instance_id`` the claim handed out. The store
applies a report only to that claim, so a pilot that lost its task (lease
reaped, task re-claimed elsewhere) gets a conflict and changes nothing: a
task completes exactly once. After each applied report the job and dataset
statuses are rolled up at once (no late cron), consumed core-hours feed fair
share, and a job that just completed has its scratch files removed.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Awaitable, Callable

from common import errors as failure_rules
from common.protocol import AttemptReport, Reason
from common.resources import Resources
from server.errors import Refused
from server.scheduling.claims import ClaimCache
from server.scheduling.pilots import retry_policy
from server.scheduling.rollup import roll_up_task
from server.settings import Settings
from server.store import (
    AttemptResult, FailureClass, InvalidArgumentError, NotFoundError, Outcome, OutputFile,
    ReportOutcome, Store, Task,
)
from server.store.rules import INFRA_KINDS

log = logging.getLogger("frazil.server.reports")


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


# ---------------------------------------------------------------- reading a report

_CLASS_NAMES = {"physics": FailureClass.PHYSICS, "non-physics": FailureClass.NONPHYSICS,
                "infra": FailureClass.INFRA}


def _last_module_exit(report: AttemptReport) -> tuple[int | None, int | None]:
    for module in reversed(report.modules):
        code, sig = module.get("exit_code"), module.get("signal")
        if isinstance(code, int) and not isinstance(code, bool) or isinstance(sig, int) and not isinstance(sig, bool):
            return (code if isinstance(code, int) else None), (sig if isinstance(sig, int) else None)
    return None, None


def _has_evidence(report: AttemptReport) -> bool:
    return (report.exit_code is not None or report.signal is not None or bool(report.modules)
            or any((report.stderr, report.stdout, report.stdlog)))


def classify_report(report: AttemptReport, physics_route: bool) -> tuple[FailureClass, str, str, str]:
    """Class, kind, rule and reason of a failure report (DESIGN.md §3.4).

    A pilot that classified its failure says so (``class``) and is believed.
    A pilot that sent only raw evidence (exit code, signal, output tails, a
    kill hint) is classified here with the same rules (``common.errors``).
    A terse IceProd-style report (reason at most) is classified by its route:
    reset = non-physics, failed = physics.
    """
    kind, rule, reason = report.kind or "", report.rule or "", report.reason or ""
    if report.failure_class:
        fclass = _CLASS_NAMES[report.failure_class]
        if fclass is FailureClass.NONPHYSICS and kind in INFRA_KINDS:
            fclass = FailureClass.INFRA
        return fclass, kind, rule, reason
    hint = kind if kind in failure_rules.HINTS else None
    if hint is not None or _has_evidence(report):
        exit_code, sig = report.exit_code, report.signal
        if exit_code is None and sig is None:
            exit_code, sig = _last_module_exit(report)
        evidence = failure_rules.FailureEvidence(
            exit_code=exit_code, signal=sig, stderr_tail=report.stderr or "", stdout_tail=report.stdout or "",
            stdlog_tail=report.stdlog or "", reason=reason, kind_hint=hint)
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


def _outputs(report: AttemptReport) -> list[OutputFile]:
    """Delivered outputs, for provenance; skipped optional outputs are left out."""
    files = []
    for index, entry in enumerate(report.outputs):
        if not entry.delivered:
            continue
        if entry.size is None or not entry.sha512:
            raise InvalidArgumentError(f"key 'outputs[{index}]': a delivered output needs its size and sha512")
        files.append(OutputFile(url=entry.url, size=entry.size, sha512=entry.sha512.lower()))
    return files


def report_result(report: AttemptReport, *, failure_class: FailureClass | None = None, kind: str = "",
                  rule: str = "", reason: str = "") -> AttemptResult:
    """The store's record of a report; peaks with no value are dropped."""
    exit_codes = list(report.exit_codes)
    if not exit_codes:
        exit_codes = [m["exit_code"] for m in report.modules
                      if isinstance(m.get("exit_code"), int) and not isinstance(m.get("exit_code"), bool)]
    return AttemptResult(
        time_used=report.time_used, resources={k: v for k, v in report.resources.items() if v is not None},
        site=report.site, host=report.hostname, failure_class=failure_class, kind=kind, rule=rule, reason=reason,
        modules=list(report.modules), exit_codes=exit_codes, inputs=list(report.inputs), outputs=_outputs(report),
        frazil_version=report.version)


# ---------------------------------------------------------------- applying it

def _stale(task_id: str) -> Refused:
    return Refused(409, f"stale instance_id for task {task_id}: this claim no longer holds the task "
                        "(it was reaped, reset or re-claimed); drop this result", reason=Reason.STALE_INSTANCE)


def _unknown_task(task_id: str) -> Refused:
    return Refused(404, f"task {task_id} not found", reason=Reason.UNKNOWN_TASK)


async def _task(store: Store, task_id: str) -> Task:
    task = await store.get_task(task_id)
    if task is None:
        raise _unknown_task(task_id)
    return task


async def processing(store: Store, settings: Settings, task_id: str, instance_id: str) -> Task:
    """The pilot started the claimed task. Claims are already ``processing``;
    this acknowledges (and renews the lease), and still moves a ``queued``
    task with this instance_id as IceProd did."""
    task = await _task(store, task_id)
    if task.instance_id != instance_id:
        raise _stale(task.task_id)
    if task.status == "processing":
        await store.renew_leases(task.pilot_id, [task.task_id], settings.lease_seconds)
    elif not await store.set_task_status(task.task_id, "processing", instance_id=instance_id):
        raise _stale(task.task_id)
    # no roll-up: queued -> processing cannot change what the job's tasks imply
    return task


class Reports:
    """Applies reports: the store's fenced write, then roll-up and fair-share usage."""

    def __init__(self, settings: Settings, cache: ClaimCache, meter: UsageMeter) -> None:
        self.settings = settings
        self.cache = cache
        self.meter = meter

    async def _apply(self, store: Store, task_id: str, instance_id: str,
                     apply: Callable[[], Awaitable[ReportOutcome]],
                     time_used: float | None) -> tuple[Task, ReportOutcome]:
        """The store answers a repeated report (clients retry POSTs) "applied"
        again, saying so; only the first counts the consumed core-hours. The
        task as claimed through this server is remembered by the claim cache
        (its job, dataset and size do not change while it runs), which saves
        reading it back on the hot path; otherwise it is read after the report."""
        outcome = await apply()
        if outcome.outcome is Outcome.NOT_FOUND:
            raise _unknown_task(task_id)
        if outcome.outcome is Outcome.STALE:
            raise _stale(task_id)
        task = self.cache.claimed_task(task_id, instance_id) or await _task(store, task_id)
        await roll_up_task(store, self.settings, task)
        if not outcome.repeated and time_used:
            owner = await self.cache.owner(store, task.dataset_id)
            try:
                cores = Resources.from_requirements(task.requirements).cpu
            except ValueError:
                cores = 1
            if owner is not None:
                await self.meter.add(store, owner[0], owner[1], max(cores, 1) * time_used / 3600.0)
        return task, outcome

    async def complete(self, store: Store, task_id: str, report: AttemptReport) -> dict[str, Any]:
        """The attempt succeeded; its outputs are recorded for provenance."""
        result = report_result(report)
        _, outcome = await self._apply(store, task_id, report.instance_id,
                                       lambda: store.complete(task_id, report.instance_id, result), result.time_used)
        return {"status": outcome.status or "complete"}

    async def failure(self, store: Store, task_id: str, report: AttemptReport, *,
                      physics_route: bool) -> dict[str, Any]:
        """A failed attempt: physics failures fail the task, others retry it
        (escalating what ran out) within the failure budgets."""
        fclass, kind, rule, reason = classify_report(report, physics_route)
        result = report_result(report, failure_class=fclass, kind=kind, rule=rule, reason=reason)
        policy = retry_policy(self.settings)
        apply = store.fail if fclass is FailureClass.PHYSICS else store.reset
        task, outcome = await self._apply(store, task_id, report.instance_id,
                                          lambda: apply(task_id, report.instance_id, result, policy),
                                          result.time_used)
        requirements = dict(task.requirements)
        requirements.update({name: change["new"] for name, change in outcome.requirement_changes.items()})
        return {
            "status": outcome.status,
            "class": "physics" if fclass is FailureClass.PHYSICS else "non-physics",
            "infrastructure": fclass is FailureClass.INFRA,
            "kind": kind, "rule": rule, "reason": reason,
            "requirement_changes": outcome.requirement_changes,
            "requirements": requirements,
        }


async def record_stats(store: Store, task_id: str, stats: dict[str, Any]) -> str:
    """Store the statistics document of an attempt; its id. The document
    keeps IceProd's keys as sent, except a ``reset`` the retry budget turned
    into the task's failure, which is recorded as ``failed``."""
    task = await store.get_task(task_id)
    if task is None:
        raise NotFoundError(f"task {task_id} not found")
    dataset_id = stats.pop("dataset_id", None) or task.dataset_id
    if dataset_id != task.dataset_id:
        raise InvalidArgumentError(f"key 'dataset_id': task {task.task_id} belongs to dataset {task.dataset_id}, "
                                   f"not {dataset_id}")
    if stats.get("status") == "reset" and task.status == "failed" and stats.get("instance_id"):
        # The pilot saw a retryable failure; the retry budget made it the last one.
        attempts = await store.get_attempts(task.task_id)
        if attempts and attempts[-1].instance_id == stats["instance_id"]:
            stats["status"] = "failed"
    return await store.add_task_stat(task.task_id, dataset_id, stats)
