"""Run one fully resolved task: stage, execute trays × modules, stage out, classify.

The same code serves ``frazil run`` (standalone) and the pilot, which passes
its shared :class:`Monitor`, a limits source that can tighten while other
tasks need the slot, a log callback that streams to the server, and a stop
event set on SIGTERM. The first failure ends the attempt; what is reported
complete has had every required output verified at its destination.
"""
from __future__ import annotations

import asyncio
import errno
import os
import signal
import time
from pathlib import Path
from typing import Callable, Mapping

from common.errors import Classification, FailureEvidence, classify
from common.plan.records import DataTransfer, TaskPlan
from common.resources import RequirementError, Resources, parse_requirement
from common.transfer import RetryPolicy, Scheme, TransferRecord
from pilot.runner.execute import ModuleContext, ModuleOutcome, run_module, signal_name
from pilot.runner.monitor import GB, Limits, LimitSource, Monitor, Usage
from pilot.runner.result import ModuleRecord, TaskResult
from pilot.runner.staging import StagingFailed, fetch_executables, stage_in, stage_out
from pilot.runner.stdlog import StdLog, tail
from pilot.runner.streaming import LogCallback, Streamer
from pilot.runner.workdir import WorkDir, create_workdir
from pilot.sandbox import ContainerError, SandboxPolicy, TaskSandbox, default_policy

LimitsArg = Resources | Callable[[], Resources | None] | None
EVICTION_REASON = "stopped by the pilot (SIGTERM/eviction)"


class _Failure(Exception):
    """Ends the attempt; carries the evidence the classifier needs."""

    def __init__(self, reason: str, kind_hint: str | None, outcome: ModuleOutcome | None = None):
        super().__init__(reason)
        self.reason = reason
        self.kind_hint = kind_hint
        self.outcome = outcome


def limit_source(limits: LimitsArg, task_start: float) -> LimitSource:
    """Turn requirements (GB, hours) into byte and deadline limits, read at every sample."""

    def current() -> Limits:
        res = limits() if callable(limits) else limits
        if res is None:
            return Limits()
        return Limits(memory=res.memory * GB if res.memory > 0 else None,
                      disk=res.disk * GB if res.disk > 0 else None,
                      deadline=task_start + res.time * 3600 if res.time > 0 else None)

    return current


class _Attempt:
    def __init__(self, plan: TaskPlan, workdir: WorkDir, ctx: ModuleContext,
                 retry: RetryPolicy | None, schemes: Mapping[str, Scheme] | None = None) -> None:
        self.plan, self.workdir, self.ctx, self.retry = plan, workdir, ctx, retry
        self.schemes = schemes
        """This attempt's own transfer handlers (its pelican token), over the registry's."""
        self.modules: list[ModuleRecord] = []
        self.inputs: list[TransferRecord] = []
        self.outputs: list[TransferRecord] = []
        self.pgids: list[int] = []

    def checkpoint(self) -> None:
        """Between steps: honour a stop request and the wall-time limit."""
        if self.ctx.stop_event is not None and self.ctx.stop_event.is_set():
            raise _Failure(EVICTION_REASON, "eviction")
        deadline = self.ctx.limits().deadline
        if deadline is not None and time.monotonic() > deadline:
            raise _Failure("wall time limit exceeded", "time")

    async def _stage(self, entries: list[DataTransfer], direction: str) -> None:
        self.checkpoint()
        done = self.inputs if direction == "in" else self.outputs
        move = stage_in if direction == "in" else stage_out
        try:
            done += await move(entries, self.workdir, self.ctx.stdlog, self.retry, self.schemes)
        except StagingFailed as exc:
            done.append(exc.record)
            raise _Failure(str(exc), exc.kind) from None

    async def _in(self, entries: list[DataTransfer]) -> None:
        await self._stage(entries, "in")

    async def _out(self, entries: list[DataTransfer]) -> None:
        await self._stage(entries, "out")

    async def run(self) -> None:
        plan = self.plan
        await self._in(plan.steering_data)
        await self._in(plan.task_data)
        for tray in plan.trays:
            await self._in(tray.data)
            for module in tray.modules:
                self.checkpoint()
                try:
                    self.inputs += await fetch_executables(module.fetch, self.workdir,
                                                           self.ctx.stdlog, self.retry, self.schemes)
                except StagingFailed as exc:
                    self.inputs.append(exc.record)
                    raise _Failure(str(exc), exc.kind) from None
                await self._in(module.data)
                outcome = await run_module(module, tray, self.ctx)
                self.modules.append(outcome.record)
                if outcome.pgid is not None:
                    self.pgids.append(outcome.pgid)
                if not outcome.ok:
                    raise _Failure(_module_reason(outcome), outcome.killed_for, outcome)
                await self._out(module.data)
            await self._out(tray.data)
        await self._out(plan.task_data)
        await self._out(plan.steering_data)

    def reap_leftovers(self) -> None:
        """Background processes a module left behind end with the task, as under HTCondor."""
        pgids, self.pgids = self.pgids, []
        for pgid in pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            self.ctx.stdlog.write(f"killed processes left running in process group {pgid}")


def _task_sandbox(policy: SandboxPolicy, plan: TaskPlan, workdir: WorkDir,
                  stdlog: StdLog) -> TaskSandbox | None:
    """Where the modules run; a container that cannot be used ends the attempt before stage-in."""
    try:
        box = policy.for_task(plan.container, plan.requirements, workdir.root, gpus=_wants_gpus(plan),
                              needs=_named_paths(plan))
    except ContainerError as exc:
        raise _Failure(str(exc), "container") from None
    stdlog.write(f"modules run in {box.describe()}" if box else "modules run as plain processes "
                 "(no container asked for, no sandbox)")
    return box


def _named_paths(plan: TaskPlan) -> list[str]:
    """Host files the modules' command lines name (their programs, scripts): regular files
    only, never a directory (naming ``/`` must not undo what the sandbox hides)."""
    paths = set()
    for _, module in plan.modules():
        for word in [*module.argv, *module.env_shell]:
            if word.startswith("/") and "\0" not in word and os.path.isfile(word):
                paths.add(os.path.normpath(word))
    return sorted(paths)


def _wants_gpus(plan: TaskPlan) -> bool:
    """Read by the one requirement parser, as the pilot sized the claim."""
    try:
        return parse_requirement("gpu", plan.requirements.get("gpu")) > 0
    except RequirementError:
        return False


def _module_reason(outcome: ModuleOutcome) -> str:
    record = outcome.record
    if outcome.killed_for:
        return f"module {record.name}: {outcome.detail}"
    if record.signal is not None:
        return f"module {record.name} killed by {signal_name(record.signal)}"
    return f"module {record.name} exited with status {record.exit_code}"


def _resources(usage: Usage, wall: float) -> dict[str, float]:
    return {
        "cpu": round(usage.cpu_seconds / wall, 3) if wall > 0 else 0.0,
        "memory": round(usage.rss_peak / GB, 6),
        "disk": round(usage.disk_peak / GB, 6),
        "time": round(wall / 3600, 6),
        "gpu": usage.gpus_peak,
        "gpumem": round(usage.gpumem_peak / GB, 6),
    }


async def run_task(plan: TaskPlan, *, workdir_base: Path, limits: LimitsArg = None,
                   log_callback: LogCallback | None = None,
                   stop_event: asyncio.Event | None = None, attempt: int | None = None,
                   monitor: Monitor | None = None, retry: RetryPolicy | None = None,
                   term_grace: float = 10.0,
                   environ: Mapping[str, str] | None = None,
                   schemes: Mapping[str, Scheme] | None = None,
                   sandbox: SandboxPolicy | None = None) -> TaskResult:
    """Run ``plan`` in a new work dir under ``workdir_base`` and classify the outcome.

    ``limits``: a Resources (the task's requirements as hard limits) or a
    function returning the limits now (the pilot tightens memory when others
    need the slot); None: no limits. ``monitor``: share one across tasks
    (the pilot); by default a private one sampling at 1 Hz. ``sandbox``: the
    pilot's container/sandbox policy; by default this host's runtimes, with
    containers as the task asks and no sandbox for image-less tasks.
    """
    workdir = create_workdir(workdir_base, plan, attempt)
    streamer = Streamer(log_callback)
    streamer.start()
    stdlog = StdLog(workdir.stdlog, streamer)
    task_start = time.monotonic()
    usage = Usage()
    ctx = ModuleContext(workdir=workdir, stdlog=stdlog, streamer=streamer,
                        monitor=monitor or Monitor(), usage=usage,
                        limits=limit_source(limits, task_start), stop_event=stop_event,
                        term_grace=term_grace, environ=os.environ if environ is None else environ)
    run = _Attempt(plan, workdir, ctx, retry, schemes)
    result = TaskResult(status="complete", workdir=str(workdir.root), start=time.time(),
                        stdout=str(workdir.stdout), stderr=str(workdir.stderr),
                        stdlog=str(workdir.stdlog))
    stdlog.write(f"task {plan.task_name} of dataset {plan.dataset} job {plan.job}, "
                 f"attempt {workdir.attempt}, in {workdir.root}")
    failure: _Failure | None = None
    try:
        ctx.sandbox = _task_sandbox(sandbox or default_policy(), plan, workdir, stdlog)
        await run.run()
    except _Failure as exc:
        failure = exc
    except asyncio.CancelledError:
        # Cancelling is not a way to stop a task (set stop_event): leave a trace and obey.
        stdlog.write("runner cancelled; the attempt has no result")
        run.reap_leftovers()
        stdlog.close()  # the finally below finds nothing left to reap, so writes nothing
        await streamer.close()
        raise
    except Exception as exc:  # the runner's own trouble (e.g. disk full) is a failure too
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        failure = _Failure(f"runner error: {type(exc).__name__}: {exc}", "disk" if full else None)
    finally:
        run.reap_leftovers()
    wall = time.monotonic() - task_start
    result.end = time.time()
    result.resources = _resources(usage, wall)
    result.modules, result.inputs, result.outputs = run.modules, run.inputs, run.outputs
    if failure is not None:
        _classify(result, failure, workdir, stdlog)
    stdlog.write(f"task ended: {result.status}" + (
        f" ({result.failure_class}, {result.kind}, rule {result.rule}): {result.reason}"
        if failure else "") + f"; peaks {result.resources}")
    stdlog.close()
    await streamer.close()
    return result


def _classify(result: TaskResult, failure: _Failure, workdir: WorkDir, stdlog: StdLog) -> None:
    outcome = failure.outcome
    stdlog.write(f"failure: {failure.reason}")
    evidence = FailureEvidence(
        exit_code=outcome.record.exit_code if outcome else None,
        signal=outcome.record.signal if outcome else None,
        stderr_tail=outcome.stderr_tail if outcome else "",
        stdout_tail=outcome.stdout_tail if outcome else "",
        stdlog_tail=tail(workdir.stdlog),
        reason=failure.reason,
        kind_hint=failure.kind_hint,
    )
    try:
        verdict = classify(evidence)
    except Exception as exc:  # e.g. a broken rules file: still report, as a retryable failure
        stdlog.write(f"classification failed: {type(exc).__name__}: {exc}")
        verdict = Classification("non-physics", "unknown", None,
                                 f"{failure.reason} (not classified: {exc})", "retry")
    result.failure_class = verdict.failure_class
    result.status = "reset" if verdict.failure_class == "non-physics" else "failed"
    result.kind, result.rule, result.action = verdict.kind, verdict.rule, verdict.action
    result.reason = verdict.reason or failure.reason
