"""One claimed task: its plan from the claim document, and the reports about it.

The claim reply carries everything needed (config version, dataset number,
job index, runtime values, the scratch base URL), so a task starts without
another round trip. Every message is one of :mod:`common.protocol`'s (the
server checks the same declarations): the claim reply is parsed into a
:class:`ClaimReply`, a report is an :class:`AttemptReport` built from the
runner's classified :class:`TaskResult` with log *tails* as evidence (the
runner's result names the log files; the server needs their text).
"""
from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.errors import Classification
from common.plan import JobContext, TaskPlan, build_task_plan
from common.protocol import AttemptReport, ClaimReply, OutputRecord, TaskStats
from common.resources import Resources
from common.version import __version__
from pilot.runner import TaskResult
from pilot.runner.stdlog import tail

TAIL_CHARS = 20_000
"""Evidence sent with a failure: enough for the classifier and a human, small for the database."""


@dataclass
class Claim:
    """A task this pilot holds, from its claim until its report is spooled."""

    reply: ClaimReply
    doc: dict[str, Any]
    """The reply as received (fields added by newer servers included)."""
    requirements: Resources
    gpus: list[str] = field(default_factory=list)
    """GPU indexes given to this task (its CUDA_VISIBLE_DEVICES)."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    abandoned: bool = False
    """The server no longer lists this task as ours: its result is not reported."""
    problem: str = ""
    """Why this task cannot run here (set by :func:`claim_from`); it is reported failed."""

    @property
    def task_id(self) -> str:
        return self.reply.task_id

    @property
    def instance_id(self) -> str:
        return self.reply.instance_id

    @property
    def dataset_id(self) -> str:
        return self.reply.dataset_id


def claim_from(doc: Any) -> Claim:
    """A Claim from the server's claim reply (a :class:`ClaimReply`;
    ProtocolError, a ValueError, when it is not one), sized by the one
    requirement parser the server sized it with. Requirements this pilot
    cannot read (a server of another version) are not guessed at: the claim
    holds nothing and :attr:`Claim.problem` fails the task without running it."""
    reply = ClaimReply.parse(doc)
    try:
        return Claim(reply=reply, doc=doc, requirements=Resources.from_requirements(reply.requirements))
    except ValueError as exc:
        return Claim(reply=reply, doc=doc, requirements=Resources(cpu=0, memory=0.0, disk=0.0, time=0.0),
                     problem=f"unreadable requirements: {exc}")


def build_plan(doc: dict[str, Any], scratch_url: str | None = None) -> TaskPlan:
    """The task's plan from a claim reply (or a task document shaped like one,
    as ``frazil run --task`` builds); ``site_temp`` is the server's scratch
    store unless the config sets one.

    Raises PlanError when the config cannot be planned for this job.
    """
    config = doc.get("config")
    if not isinstance(config, dict):
        raise ValueError("the claim carries no config")
    options = dict(config.get("options") or {})
    base = scratch_url or doc.get("scratch_url")
    if base:
        options.setdefault("site_temp", str(base).rstrip("/"))
    ctx = JobContext(dataset=int(doc.get("dataset") or 0), job=int(doc.get("job_index") or 0),
                     jobs_submitted=int(doc.get("jobs_submitted") or 1),
                     dataset_id=str(doc.get("dataset_id", "")), task_id=str(doc.get("task_id", "")),
                     debug=bool(doc.get("debug", False)),
                     task_files=[f for f in doc.get("files") or [] if isinstance(f, dict)],
                     sources={str(k): str(v) for k, v in (doc.get("sources") or {}).items()})
    # The server stores the config filled with defaults at submit: planned as is.
    return build_task_plan({**config, "options": options}, int(doc.get("task_index") or 0), ctx,
                           defaults_filled=True)


def plan_failure(exc: Exception, started: float) -> TaskResult:
    """A config that cannot be planned fails like IceProd's task script did: as physics
    (another try on another node changes nothing)."""
    verdict = Classification("physics", "config", None, f"cannot plan the task: {exc}", "fail")
    now = time.time()
    return TaskResult(status="failed", failure_class=verdict.failure_class, kind=verdict.kind,
                      rule=verdict.rule, reason=verdict.reason, action=verdict.action, start=started, end=now)


def route_for(result: TaskResult) -> str:
    """complete | reset (non-physics: retry) | failed (physics)."""
    return result.status if result.status in ("complete", "reset", "failed") else "reset"


def _tail(path: str) -> str:
    if not path:
        return ""
    try:
        return tail(Path(path), TAIL_CHARS)
    except OSError:
        return ""


def _module_records(result: TaskResult, site: str, os_arch: str) -> list[dict[str, Any]]:
    """Module records with the slot's site and OS beside the environment the module saw."""
    records = []
    for module in result.modules:
        record = asdict(module)
        record["environment"] = {**({"SITE": site} if site else {}), **({"OS_ARCH": os_arch} if os_arch else {}),
                                 **module.environment}
        records.append(record)
    return records


def report_body(result: TaskResult, claim: Claim, *, site: str, hostname: str | None = None,
                os_arch: str = "") -> dict[str, Any]:
    """The body of complete / reset / failed."""
    start = result.start or time.time()
    end = result.end or time.time()
    report = AttemptReport(
        instance_id=claim.instance_id, time_used=round(max(end - start, 0.0), 3), resources=dict(result.resources),
        site=site, hostname=hostname or socket.gethostname(), version=__version__, start=start, end=end,
        modules=_module_records(result, site, os_arch), inputs=[asdict(r) for r in result.inputs],
        outputs=[OutputRecord(url=r.url, size=r.size, sha512=r.sha512, skipped=r.skipped)
                 for r in result.outputs if r.ok])
    if result.status != "complete":
        last = result.modules[-1] if result.modules else None
        report.failure_class, report.kind, report.rule = result.failure_class, result.kind, result.rule
        report.reason, report.action = result.reason, result.action
        report.exit_code = last.exit_code if last else None
        report.signal = last.signal if last and last.signal and 1 <= last.signal <= 128 else None
        report.stdout, report.stderr = _tail(result.stdout), _tail(result.stderr)
        report.stdlog = _tail(result.stdlog)
    return report.to_json()


def stats_body(result: TaskResult, claim: Claim, *, site: str, pilot_id: str,
               hostname: str | None = None) -> dict[str, Any]:
    """IceProd-style task_stats: what the attempt used and moved."""
    moved = [r for r in result.inputs + result.outputs if r.ok and not r.skipped]
    return TaskStats(
        dataset_id=claim.dataset_id, task_name=claim.reply.name, attempt=claim.reply.attempt,
        instance_id=claim.instance_id, pilot_id=pilot_id, site=site, hostname=hostname or socket.gethostname(),
        status=result.status, failure_class=result.failure_class, kind=result.kind,
        resources=dict(result.resources), requirements=claim.requirements.as_dict(),
        time_used=round(max((result.end or 0) - (result.start or 0), 0.0), 3),
        modules=[{"name": m.name, "exit_code": m.exit_code, "signal": m.signal,
                  "seconds": round((m.end or 0) - (m.start or 0), 3) if m.start else None}
                 for m in result.modules],
        transfers={"files": len(moved), "bytes": sum(r.size or 0 for r in moved),
                   "seconds": round(sum(r.seconds for r in moved), 3)},
        version=__version__).to_json()
