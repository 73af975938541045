"""The pilot: register, heartbeat, fill the slot with tasks, report (DESIGN.md §3.5).

One asyncio loop runs everything: the claim loop, one coroutine per running
task (the runner), the heartbeat and the spool's delivery. Claims ask with
the slot's *free* resources, so the server hands out only what fits, and the
pilot claims again at once after each success until the server says nothing
fits (404) — then it backs off (Retry-After, growing exponentially with
jitter) until something changes. Every report is written to the spool first
and delivered in order, so an unreachable server costs nothing but time.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from common.plan import PlanError
from common.protocol import (
    Heartbeat, HeartbeatReply, ProtocolError, Reason, Registration, RegistrationReply, ResourceSet,
)
from common.resources import Resources
from common.version import __version__
from pilot.api import Reply, ServerApi, Unreachable
from pilot.attempt import Claim, build_plan, claim_from, plan_failure, report_body, route_for, stats_body
from pilot.claiming import ClaimCalls
from pilot.detect import Slot
from pilot.logstream import TaskLogs
from pilot.runner import Monitor, TaskResult, run_task
from pilot.sandbox import SandboxPolicy, default_policy
from pilot.scratch import use_server_credentials
from pilot.storage import file_schemes, pelican_schemes
from pilot.spool import Spool

log = logging.getLogger("frazil.pilot")
SECRET_VARIABLES = frozenset({"FRAZIL_TOKEN", "FRAZIL_TOKEN_FILE"})
"""The pilot's credentials: never in a module's environment."""


@dataclass
class PilotConfig:
    url: str
    token: str
    workdir: Path
    slot: Slot
    idle_timeout: float = 300.0
    """Exit after this many seconds with nothing running and nothing claimed."""
    max_backoff: float = 60.0
    claim_wait: float = 20.0
    """Seconds a claim may wait on the server for work (below the HTTP client's 30 s timeout)."""
    heartbeat: float | None = None
    """Seconds between heartbeats; default: what the server asks for."""
    log_interval: float = 1.0
    lifetime_margin: float = 120.0
    """Stop claiming this many seconds before the slot ends; running tasks are
    stopped (as evictions) ``term_grace`` seconds before it."""
    term_grace: float = 10.0
    delivery_wait: float = 60.0
    """At exit, how long to keep trying to deliver spooled reports."""
    keep_workdirs: bool = False
    provider: str = ""
    provider_job_id: str = ""
    monitor_interval: float = 1.0
    sandbox: SandboxPolicy | None = None
    """Containers and the module sandbox (default: this host's runtimes, no bare sandbox)."""
    os_image_flags: dict[str, str] = field(default_factory=dict)
    """--os-image OS=IMAGE: this worker's own images, over the server's os_images."""
    hostname: str = ""
    """--hostname: the host name reported to the server (default: the machine's)."""
    group: str = ""
    """--group: the batchsys group this pilot was started for (claims only its tasks)."""


@dataclass
class Counters:
    claimed: int = 0
    complete: int = 0
    reset: int = 0
    failed: int = 0
    abandoned: int = 0
    evicted: int = 0


@dataclass
class _Wake:
    """Wakes the claim loop when something that matters changed (a task ended,
    drain, SIGTERM)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)

    def set(self) -> None:
        self.event.set()

    async def sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.event.wait(), timeout=max(seconds, 0.0))
        except asyncio.TimeoutError:
            pass
        self.event.clear()


class Pilot(ClaimCalls):
    def __init__(self, config: PilotConfig) -> None:
        self.config = config
        self.slot = config.slot
        self.api = ServerApi(config.url, config.token)
        self.spool = Spool(config.workdir / "spool")
        self.monitor = Monitor(interval=config.monitor_interval)
        self.pilot_id = ""
        self.running: dict[str, Claim] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()
        self.draining = False
        self.exit_reason = ""
        self.counters = Counters()
        self.heartbeat_seconds = config.heartbeat or 60.0
        self._wake = _Wake()
        self._deliver_lock = asyncio.Lock()
        self._register_lock = asyncio.Lock()
        self._last_busy = time.monotonic()
        self._hostname = config.hostname or socket.gethostname()
        self.sandbox = config.sandbox or default_policy()
        self.sandbox.host_os = config.slot.os
        self.sandbox.hide.append(str(config.workdir))  # the spool, other tasks' dirs
        self.sandbox.os_images.update(config.os_image_flags)
        self.advertised_os = self.sandbox.advertised_os()

    # -- resources -------------------------------------------------------------------------

    def free(self) -> Resources:
        cpu, gpu, memory, disk = self.slot.cpu, self.slot.gpu, self.slot.memory, self.slot.disk
        for claim in self.running.values():
            need = claim.requirements
            cpu, gpu, memory, disk = cpu - need.cpu, gpu - need.gpu, memory - need.memory, disk - need.disk
        hours = self.slot.hours_left() - self.config.lifetime_margin / 3600
        return Resources(cpu=max(cpu, 0), gpu=max(gpu, 0), memory=round(max(memory, 0.0), 6),
                         disk=round(max(disk, 0.0), 6), time=round(max(hours, -1e5), 6))

    def _limits(self, claim: Claim) -> Callable[[], Resources]:
        """A task alone in the slot may use the slot's memory and disk; with others
        running it is held to its request, so no task eats another's share."""
        need = claim.requirements
        alone = Resources(cpu=need.cpu, gpu=need.gpu, memory=max(need.memory, self.slot.memory),
                          disk=max(need.disk, self.slot.disk), time=need.time)

        def current() -> Resources:
            return alone if len(self.running) <= 1 else need

        return current

    def _assign_gpus(self, count: int) -> list[str]:
        taken = {g for claim in self.running.values() for g in claim.gpus}
        free = [g.index for g in self.slot.gpus if g.index not in taken]
        return free[:count] if len(free) >= count else []

    # -- life cycle ------------------------------------------------------------------------

    async def run(self) -> int:
        use_server_credentials(self.config.url, self.config.token)
        (self.config.workdir / "tasks").mkdir(parents=True, exist_ok=True)
        if not await self._register():
            log.error("could not register with %s; exiting", self.config.url)
            await self.api.close()
            return 1
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        delivery = asyncio.create_task(self._delivery_loop())
        slot_end = asyncio.create_task(self._end_of_slot())
        try:
            await self._claim_loop()
            await self._wait_running()
        finally:
            heartbeat.cancel()
            delivery.cancel()
            slot_end.cancel()
            await self._finish()
        log.info("pilot %s exits (%s): %s", self.pilot_id, self.exit_reason, self.counters)
        return 0

    def stop(self) -> None:
        """SIGTERM: claim nothing more; running tasks end now and are reported as evicted."""
        if self.stopping.is_set():
            return
        log.info("stop requested: ending %d running task(s)", len(self.running))
        self.exit_reason = self.exit_reason or "terminated"
        self.stopping.set()
        for claim in self.running.values():
            claim.stop.set()
        self._wake.set()

    async def _register(self) -> bool:
        pilot_id = self.pilot_id or uuid.uuid4().hex
        slot = self.slot
        body = Registration(
            pilot_id=pilot_id, resources=ResourceSet(cpu=slot.cpu, gpu=slot.gpu, memory=slot.memory, disk=slot.disk,
                                                     time=round(slot.hours_left(), 6)),
            site=slot.site, hostname=self._hostname, os=self.advertised_os, version=__version__,
            provider=self.config.provider, provider_job_id=self.config.provider_job_id,
            group=self.config.group).to_json()
        deadline = time.monotonic() + self.config.idle_timeout
        attempt = 0
        while not self.stopping.is_set():
            try:
                reply = await self.api.call("POST", "/pilots", body)
            except Unreachable as exc:
                if time.monotonic() > deadline:
                    return False
                attempt += 1
                log.warning("cannot register yet: %s", exc)
                await self._wake.sleep(self._backoff(1.0, attempt))
                continue
            if reply.ok:
                try:
                    registered = RegistrationReply.parse(reply.data)
                except ProtocolError as exc:
                    log.error("registration reply not understood: %s", exc)
                    return False
                self.pilot_id = registered.result
                self._use_token(registered.token)
                self._use_os_images(registered.os_images)
                self._follow_server(registered.heartbeat_seconds, registered.lease_seconds)
                log.info("registered as pilot %s: %s; container runtimes %s; claims for OS %s",
                         self.pilot_id, slot.describe(), self.sandbox.runtimes.names() or "none",
                         self.advertised_os)
                return True
            log.error("registration refused: %s", reply.error)
            return False
        return False

    def _use_os_images(self, images: Any) -> None:
        """The server's os_images (its setting), under this worker's own --os-image flags."""
        if isinstance(images, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in images.items()):
            self.sandbox.os_images = {**images, **self.config.os_image_flags}
            self.advertised_os = self.sandbox.advertised_os()

    async def _reregister(self, stale_id: str) -> bool:
        """The server forgot this pilot (deleted): register again, once, even when the
        heartbeat and the claim loop both notice."""
        async with self._register_lock:
            if self.pilot_id and self.pilot_id != stale_id:
                return True
            # with the same id: the token the pilot holds now is bound to it
            log.warning("the server forgot pilot %s; registering again", stale_id)
            return await self._register()

    async def _claim_loop(self) -> None:
        empty = 0
        while True:
            if self.stopping.is_set():
                return
            if self.draining:
                self.exit_reason = self.exit_reason or "drained"
                return
            free = self.free()
            if free.time <= 0:
                self.exit_reason = "lifetime"
                return
            if not self.running and time.monotonic() - self._last_busy > self.config.idle_timeout:
                self.exit_reason = "idle"
                return
            if free.cpu < 1 or free.memory <= 0:
                await self._wake.sleep(self.heartbeat_seconds)  # full: wait for a task to end
                continue
            try:
                reply, held = await self._claim(free)
            except Unreachable as exc:
                empty += 1
                log.warning("claim: %s", exc)
                await self._wake.sleep(self._backoff(1.0, empty))
                continue
            if reply is None:  # stopped while the claim waited
                return
            if reply.status == 200:
                try:
                    claim = claim_from(reply.data)
                except ProtocolError as exc:  # its lease runs out on the server; nothing to report to
                    log.error("claim reply is not a task (%s): ignored", exc)
                    await self._wake.sleep(self._backoff(4.0, empty := empty + 1))
                    continue
                empty = 0
                self._start(claim)
                continue
            if held:  # the server held the claim and nothing came: again at once (jittered)
                empty = 0
                await self._wake.sleep(random.uniform(0.0, 0.2))
                continue
            await self._not_claimed(reply, empty := empty + 1)

    async def _not_claimed(self, reply: Reply, attempt: int) -> None:
        """Acts on the error's ``reason`` (common.protocol.Reason), never on its text."""
        reason = reply.reason
        if reason in (Reason.RATE_LIMITED, Reason.NOTHING_FITS):
            await self._wake.sleep(self._backoff(reply.retry_after(4.0), attempt) if reason is Reason.NOTHING_FITS
                                   else reply.retry_after(1.0) * random.uniform(1.0, 1.25))
        elif reason in (Reason.DRAINING, Reason.PILOT_EXITED, Reason.QUARANTINED):
            log.info("the server gives this pilot no more tasks: %s", reply.error)
            self.draining = True
        elif reason is Reason.UNKNOWN_PILOT:
            if not await self._reregister(self.pilot_id):
                self.draining = True
        else:
            log.error("claim refused: %s", reply.error)
            self._refused(reply)
            await self._wake.sleep(self._backoff(4.0, attempt))

    def _use_token(self, token: str | None) -> None:
        """The pilot's own token from the server (registration, then every
        heartbeat renews it before it expires): API calls and scratch transfers use it."""
        if token:
            self.api.use_token(token)
            use_server_credentials(self.config.url, token)

    def _refused(self, reply: Reply) -> None:
        """401: the server no longer takes this pilot's token (it expired while
        the server could not be reached for longer than a lease, or it was
        revoked): nothing more can be claimed or renewed, so finish and exit."""
        if reply.status == 401 and not self.draining:
            log.error("the server no longer accepts this pilot's token: draining")
            self.exit_reason = self.exit_reason or "token"
            self.draining = True
            self._wake.set()

    def _start(self, claim: Claim) -> None:
        if self.stopping.is_set():  # SIGTERM arrived while the claim was in flight
            claim.stop.set()
        claim.gpus = self._assign_gpus(claim.requirements.gpu)
        self.running[claim.task_id] = claim
        self.counters.claimed += 1
        self._last_busy = time.monotonic()
        self._follow_server(claim.reply.heartbeat_seconds, claim.reply.lease_seconds)
        run = asyncio.create_task(self._run_claim(claim))
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    async def _run_claim(self, claim: Claim) -> None:
        started = time.time()
        logs = TaskLogs(self.api, claim.task_id, claim.instance_id, interval=self.config.log_interval)
        result: TaskResult | None = None
        try:
            try:
                if claim.problem:
                    raise ValueError(claim.problem)
                plan = build_plan(claim.doc)
            except (PlanError, ValueError, TypeError) as exc:
                result = plan_failure(exc, started)
            else:
                environ = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
                if claim.gpus:
                    environ["CUDA_VISIBLE_DEVICES"] = ",".join(claim.gpus)
                elif self.slot.gpu and not claim.requirements.gpu:
                    # A CPU task must not grab the devices GPU tasks beside it were given.
                    environ["CUDA_VISIBLE_DEVICES"] = ""
                result = await run_task(plan, workdir_base=self.config.workdir / "tasks",
                                        limits=self._limits(claim), log_callback=logs.feed,
                                        stop_event=claim.stop, attempt=claim.reply.attempt,
                                        monitor=self.monitor, term_grace=self.config.term_grace,
                                        environ=environ,
                                        schemes={**pelican_schemes(claim.doc), **file_schemes(claim.doc)},
                                        sandbox=self.sandbox)
            await self._report(claim, result, logs)
        except Exception:  # a pilot bug must not take the other tasks down
            log.exception("task %s: internal error", claim.task_id)
        finally:
            self.running.pop(claim.task_id, None)
            self._last_busy = time.monotonic()
            self._wake.set()
        await self.deliver()  # the report first: cleaning up must not delay it
        if result is not None and result.workdir and not self.config.keep_workdirs:
            await asyncio.to_thread(shutil.rmtree, result.workdir, True)

    async def _report(self, claim: Claim, result: TaskResult, logs: TaskLogs) -> None:
        if claim.abandoned:
            self.counters.abandoned += 1
            log.info("task %s abandoned (the server gave it to someone else): not reported", claim.task_id)
            await logs.discard()
            return
        route = route_for(result)
        setattr(self.counters, route, getattr(self.counters, route) + 1)
        if result.kind == "eviction":
            self.counters.evicted += 1
        log.info("task %s (%s): %s %s", claim.task_id, claim.reply.name, result.status,
                 f"({result.failure_class}, {result.kind}): {result.reason}" if result.status != "complete" else "")
        await logs.finish(self.spool)
        self.spool.add("POST", f"/tasks/{claim.task_id}/task_actions/{route}",
                       report_body(result, claim, site=self.slot.site, hostname=self._hostname,
                                   os_arch=self.slot.os),
                       f"{route} of {claim.task_id}")
        self.spool.add("POST", f"/tasks/{claim.task_id}/task_stats",
                       stats_body(result, claim, site=self.slot.site, pilot_id=self.pilot_id, hostname=self._hostname),
                       f"stats of {claim.task_id}")

    async def deliver(self) -> bool:
        async with self._deliver_lock:
            return await self.spool.deliver(self.api)

    async def _delivery_loop(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            if len(self.spool):
                await self.deliver()

    def _follow_server(self, heartbeat: float | None, lease: float | None) -> None:
        """The interval the server asks for (or --heartbeat), never more than a
        third of its lease: from registration on, every heartbeat comes in time."""
        interval = self.config.heartbeat or heartbeat or self.heartbeat_seconds
        if lease and lease > 0:
            interval = min(interval, lease / 3)
        if interval > 0:
            self.heartbeat_seconds = interval

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        sent = list(self.running)
        try:
            reply = await self.api.call("PATCH", f"/pilots/{self.pilot_id}", Heartbeat(
                free=ResourceSet(**self.free().as_dict()), tasks=sent).to_json())
        except Unreachable as exc:
            log.warning("heartbeat: %s", exc)
            return
        if reply.reason is Reason.UNKNOWN_PILOT:
            await self._reregister(self.pilot_id)
            return
        try:
            answer = HeartbeatReply.parse(reply.data) if reply.ok else None
        except ProtocolError as exc:
            log.warning("heartbeat reply not understood: %s", exc)
            return
        if answer is None:
            log.warning("heartbeat refused: %s", reply.error)
            self._refused(reply)
            return
        self._use_token(answer.token)
        held = set(answer.tasks)
        for task_id in sent:
            claim = self.running.get(task_id)
            if claim is not None and task_id not in held and not claim.abandoned:
                log.warning("task %s is no longer ours (lease lost): abandoning it", task_id)
                claim.abandoned = True
                claim.stop.set()
        if answer.drain and not self.draining:
            log.info("the server asks this pilot to drain")
            self.draining = True
            self._wake.set()
        self._follow_server(answer.heartbeat_seconds, answer.lease_seconds)

    async def _end_of_slot(self) -> None:
        """Whatever the claim loop is doing, stop before the batch system kills the
        slot (a Slurm time limit, a glidein's end): running tasks end as evictions
        and go back to the queue at once instead of dying with the slot."""
        if self.slot.end is None:
            return
        await asyncio.sleep(max(self.slot.end - time.time() - self.config.term_grace - 5, 0.0))
        self.exit_reason = self.exit_reason or "lifetime"
        self.stop()

    async def _wait_running(self) -> None:
        """Let running tasks finish, but stop them before the slot ends."""
        while self._runs:
            if self.slot.end is not None:
                left = self.slot.end - time.time() - self.config.term_grace - 5
                if left <= 0:
                    self.exit_reason = self.exit_reason or "lifetime"
                    self.stop()
                    left = self.config.term_grace + 30
            else:
                left = None
            await asyncio.wait(set(self._runs), timeout=left)

    async def _finish(self) -> None:
        for claim in self.running.values():
            claim.stop.set()
        if self._runs:
            await asyncio.wait(set(self._runs))
        deadline = time.monotonic() + self.config.delivery_wait
        while not await self.deliver() and time.monotonic() < deadline:
            await asyncio.sleep(min(2.0, max(deadline - time.monotonic(), 0)))
        if len(self.spool):
            log.warning("%d report(s) left in %s for the next pilot in this work dir",
                        len(self.spool), self.spool.directory)
        if self.pilot_id:
            try:
                # Nothing held any more: the DELETE must not release tasks already reported.
                await self.api.call("PATCH", f"/pilots/{self.pilot_id}",
                                    Heartbeat(free=ResourceSet(**self.free().as_dict()), tasks=[]).to_json())
                await self.api.call("DELETE", f"/pilots/{self.pilot_id}")
            except Unreachable as exc:
                log.warning("could not deregister: %s", exc)
        await self.api.close()
