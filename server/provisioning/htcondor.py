"""The HTCondor provider: pilots as HTCondor jobs, through the htcondor2 bindings.

Submit descriptions come from ``condor_templates/`` (CPU and GPU pilot),
rendered with jinja2 and checked by building an ``htcondor2.Submit`` before
anything reaches the schedd. All pilots of one shape in one round are one
``Schedd.submit`` with ``itemdata`` (one cluster, one proc per pilot).

State changes come from the pilots' job event log
(:mod:`server.provisioning.condor_events`), read incrementally each round.
The schedd is queried for every pilot only on the first round and every
:data:`RECONCILE_SECONDS` (or every round while no event log exists, e.g. a
remote schedd whose shadows write the log elsewhere): which pilots are ours is
read from their ClassAds (``FrazilPilot``, ``FrazilServer``; the shape in
``FrazilCpu``/``FrazilMemory``/...), so a restart or a second server replica
finds them again. Pilots that left the queue unseen are looked up in
``Schedd.history``. ``status()`` only reads; held pilots are released or
removed by hold reason in :meth:`CondorProvider.handle_held` (the table is in
condor_events), submit directories pruned in :meth:`housekeeping`; idle
pilots the queue no longer needs are removed with ``Schedd.act``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import classad2
import htcondor2
import jinja2

from common.resources import condor_time_category
from server.provisioning.base import (
    BatchProvider, EndedJobs, JobState, PilotJob, PilotShape, ProviderCounts, ProviderError,
)
from server.provisioning.condor_needs import pilot_needs
from server.provisioning.condor_events import Change, EventLogReader, HoldAction, hold_action
from server.provisioning.local import write_secret

log = logging.getLogger("frazil.server.provisioning")

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "condor_templates"
DEFAULT_IMAGE = "/cvmfs/singularity.opensciencegrid.org/frazil/pilot:latest"
"""Default container for pilots (bootstrap 'container'); operators set their own with ``pilot_image``."""
DEFAULT_GPU_CAPABILITY = 6.1
BOOTSTRAPS = ("container", "shared", "bundle")
# JobStatus codes: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring output, 7 suspended
JOB_STATES = {1: JobState.PENDING, 2: JobState.RUNNING, 3: JobState.CANCELLED, 4: JobState.COMPLETED,
              5: JobState.HELD, 6: JobState.RUNNING, 7: JobState.PENDING}
PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "HoldReasonCode", "RemoveReason", "ExitCode", "QDate",
              "JobCurrentStartDate", "FrazilSite", "FrazilCpu", "FrazilGpu", "FrazilMemory", "FrazilDisk",
              "FrazilHours", "FrazilOS", "FrazilGroup"]
KEPT_HELD = 50
HISTORY_CHUNK = 500
"""Jobs looked up per Schedd.history call (one constraint naming each of them)."""
RECONCILE_SECONDS = 600.0
"""How often the schedd is queried for every pilot although the event log is read."""
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.:/@+-]*$")


class DescriptionError(ProviderError):
    """A rendered submit description that HTCondor would not accept."""


@dataclass
class CondorOptions:
    """How pilots are described: bootstrap, image, command, extra lines."""

    server_url: str
    submit_dir: Path
    bootstrap: str = "container"
    """container: frazil inside ``image`` (+SingularityImage); shared: ``command`` on a shared
    file system (CVMFS); bundle: the ``make pilot-bundle`` zipapp, transferred with the job."""
    image: str = DEFAULT_IMAGE
    command: str = "/usr/local/bin/frazil"
    bundle: str = "build/frazil-pilot.pyz"
    gpu_capability: float = DEFAULT_GPU_CAPABILITY
    site_requirements: dict[str, str] = field(default_factory=dict)
    site_lines: dict[str, list[str]] = field(default_factory=dict)
    """Extra submit lines per site (IceProd's ``batchopts``)."""
    site_os: dict[str, list[str]] = field(default_factory=dict)
    """OS_ARCH names each site's nodes run (its ``os`` list): no image needed for those."""
    os_images: dict[str, str] = field(default_factory=dict)
    """The server's os_images: OS groups the site does not run go to images (condor_needs.py)."""

    def __post_init__(self) -> None:
        if self.bootstrap not in BOOTSTRAPS:
            raise ValueError(f"pilot_bootstrap must be one of {', '.join(BOOTSTRAPS)}, got {self.bootstrap!r}")
        for name, value in (("server URL", self.server_url), ("pilot_command", self.command),
                            ("pilot bundle", self.bundle), ("pilot_image", self.image)):
            if not _SAFE_WORD.match(value):
                raise ValueError(f"{name} {value!r}: only letters, digits and _.:/@+- are allowed in a submit file")


class Schedd(Protocol):
    """What the provider uses of ``htcondor2.Schedd`` (the tests' FakeSchedd has the same signatures)."""

    def submit(self, description: htcondor2.Submit, count: int = ..., spool: bool = ...,
               itemdata: Any = ..., queue: str = ...) -> htcondor2.SubmitResult: ...

    def query(self, constraint: str = ..., projection: list[str] = ..., callback: Any = ...,
              limit: int = ..., opts: htcondor2.QueryOpt = ...) -> list[classad2.ClassAd]: ...

    def history(self, constraint: str | None = ..., projection: list[str] = ..., match: int = ...,
                since: Any = ...) -> list[classad2.ClassAd]: ...

    def act(self, action: htcondor2.JobAction, job_spec: list[str] | str, reason: str = ...) -> classad2.ClassAd: ...


def site_requirement(site: str, configured: str | None) -> str:
    """The site part of ``requirements``: configured, else the glidein's site name."""
    if configured:
        return configured
    return f'(TARGET.GLIDEIN_Site =?= "{site}")' if site else "True"


class DescriptionRenderer:
    def __init__(self, options: CondorOptions, template_dir: Path = TEMPLATE_DIR) -> None:
        self.options = options
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)),
                                      undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                      autoescape=False)

    def render(self, shape: PilotShape, submit_dir: Path, token_file: Path,
               batchsys: Mapping[str, Any] | None = None) -> str:
        """The description of pilots of ``shape``; ``batchsys``: the checked overrides of its group."""
        if not _SAFE_WORD.match(shape.site) or any(not _SAFE_WORD.match(o) or "," in o for o in shape.os) \
                or not _SAFE_WORD.match(shape.group):
            raise DescriptionError(f"site {shape.site!r} / os {shape.os!r} / group {shape.group!r}: "
                                   "not allowed in a submit file")
        opts = self.options
        template = self.env.get_template("pilot-gpu.sub" if shape.gpu else "pilot-cpu.sub")
        needs = pilot_needs(shape, site_os=opts.site_os.get(shape.site, []), images=opts.os_images,
                            bootstrap=opts.bootstrap, batchsys=batchsys)
        if needs.image and not _SAFE_WORD.match(needs.image):
            raise DescriptionError(f"os_images image {needs.image!r}: not allowed in a submit file")
        image = opts.image if opts.bootstrap == "container" else needs.image
        requirements = " && ".join([site_requirement(shape.site, opts.site_requirements.get(shape.site)),
                                    *needs.requirements])
        return template.render(
            shape=shape, site=shape.site, server_url=opts.server_url, bootstrap=opts.bootstrap,
            command=opts.command, bundle=opts.bundle, image=image, token_file=str(token_file),
            submit_dir=str(submit_dir), event_log=str(opts.submit_dir / "pilots.jel"),
            memory_mb=int(round(shape.memory * 1000)), disk_kb=int(round(shape.disk * 1e6 + 1e6)),
            hours=f"{shape.time:g}", wall_minutes=int(shape.time * 60),
            time=condor_time_category(shape.time), gpu_capability=opts.gpu_capability,
            requirements=requirements, pilot_args=" ".join(needs.arguments),
            extra_lines=opts.site_lines.get(shape.site, []) + needs.lines)


def build_submit(description: str) -> htcondor2.Submit:
    """An ``htcondor2.Submit`` from a description, checked the way condor_submit would:
    every custom attribute and the requirements must parse as ClassAd expressions,
    the request_* values must be numbers."""
    try:
        submit = htcondor2.Submit(description)
    except Exception as exc:  # the bindings raise HTCondorException and ValueError subclasses
        raise DescriptionError(f"htcondor2.Submit rejected the description: {exc}") from None
    for key in submit.keys():
        value = submit[key]
        if key.startswith("MY.") or key.lower() == "requirements":
            try:
                classad2.ExprTree(value)
            except Exception as exc:
                raise DescriptionError(f"{key} = {value}: not a ClassAd expression ({exc})") from None
        if key.lower().startswith("request_"):
            try:
                float(submit.expand(key))
            except ValueError:
                raise DescriptionError(f"{key} = {value}: not a number") from None
    for required in ("executable", "request_cpus", "request_memory", "request_disk", "MY.FrazilPilot"):
        if required not in submit.keys():
            raise DescriptionError(f"submit description lacks {required}")
    return submit


def _shape_of(ad: classad2.ClassAd) -> PilotShape:
    os_text = str(ad.get("FrazilOS", "") or "")
    return PilotShape(cpu=int(ad.get("FrazilCpu", 1)), gpu=int(ad.get("FrazilGpu", 0)),
                      memory=float(ad.get("FrazilMemory", 1.0)), disk=float(ad.get("FrazilDisk", 1.0)),
                      time=float(ad.get("FrazilHours", 1.0)), site=str(ad.get("FrazilSite", "") or ""),
                      os=tuple(o for o in os_text.split(",") if o), group=str(ad.get("FrazilGroup", "") or ""))


def _job_id(ad: classad2.ClassAd) -> str:
    return f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class CondorProvider(BatchProvider):
    name = "htcondor"
    marker = "pilot.sub"

    def __init__(self, *, options: CondorOptions, schedd_factory: Callable[[], Schedd],
                 mint_token: Callable[[], str], keep_submit_dirs_seconds: float = 8 * 86400) -> None:
        super().__init__(options.submit_dir, keep_submit_dirs_seconds)
        self.options = options
        self.renderer = DescriptionRenderer(options)
        self.schedd_factory = schedd_factory
        self.mint_token = mint_token
        self.events = EventLogReader(options.submit_dir / "pilots.jel")
        self._schedd: Schedd | None = None
        self.ended = EndedJobs()
        self._hold_codes: dict[str, int | None] = {}
        self._releases: collections.Counter[str] = collections.Counter()
        self._kept_held: set[str] = set()
        self._submitted = 0
        self._released = 0
        self.removed_held: collections.deque[dict[str, str]] = collections.deque(maxlen=KEPT_HELD)
        self._reconciled = 0.0

    def schedd(self) -> Schedd:
        if self._schedd is None:
            try:
                self._schedd = self.schedd_factory()
            except Exception as exc:
                raise ProviderError(f"cannot reach the HTCondor schedd: {exc}") from None
        return self._schedd

    @property
    def constraint(self) -> str:
        return f'FrazilPilot =?= true && FrazilServer =?= "{self.options.server_url}"'

    # -------------------------------------------------------------- Provider

    async def submit(self, shape: PilotShape, count: int) -> list[str]:
        if count <= 0:
            return []
        submit = await asyncio.to_thread(self._prepare, shape)  # files and rendering: off the event loop
        itemdata = [{"pilot_index": str(i)} for i in range(count)]
        schedd = self.schedd()
        try:
            result = await asyncio.to_thread(schedd.submit, submit, count=1, itemdata=iter(itemdata))
        except Exception as exc:
            raise ProviderError(f"HTCondor submit of {count} {shape.name} pilot(s) failed: {exc}") from None
        cluster, first, num = result.cluster(), result.first_proc(), result.num_procs()
        now = time.time()
        ids = [f"{cluster}.{first + i}" for i in range(num)]
        for job_id in ids:
            self._jobs[job_id] = PilotJob(job_id=job_id, shape=shape, state=JobState.PENDING, submitted=now)
        self._submitted += len(ids)
        log.info("pilots submitted", extra={"cluster": cluster, "count": len(ids), "shape": shape.name,
                                            "site": shape.site})
        return ids

    async def status(self, job_ids: list[str] | None = None) -> dict[str, JobState]:
        schedd = self.schedd()
        now = time.time()
        if not self._reconciled or now - self._reconciled > RECONCILE_SECONDS or \
                (self._jobs and not self.events.path.exists()):
            await asyncio.to_thread(self.events.read)  # what the query below sees need not be replayed
            await self._reconcile(schedd)
            self._reconciled = now
        else:
            try:
                changes = await asyncio.to_thread(self.events.read)
            except Exception as exc:  # a damaged log: the next round queries the schedd instead
                self._reconciled = 0.0
                raise ProviderError(f"HTCondor job event log {self.events.path}: {exc}") from None
            for change in changes:
                self._apply(change)
        self._forget_ended()
        wanted = job_ids if job_ids is not None else list(self._jobs)
        return {job_id: self._state_of(job_id) for job_id in wanted}

    async def cancel(self, job_ids: list[str], reason: str = "") -> list[str]:
        if not job_ids:
            return []
        why = f"frazil: {reason or 'not needed'}"
        await self._act(htcondor2.JobAction.Remove, list(job_ids), why)
        for job_id in job_ids:
            self._end(job_id, JobState.CANCELLED, why)
        log.info("pilots removed", extra={"count": len(job_ids), "reason": why})
        return list(job_ids)

    async def handle_held(self) -> None:
        """Release or remove held pilots by hold reason (condor_events' table)."""
        decided: dict[HoldAction, list[tuple[str, str]]] = {HoldAction.RELEASE: [], HoldAction.REMOVE: []}
        for job in self._jobs.values():
            if job.state != JobState.HELD or job.job_id in self._kept_held:
                continue
            action, why = hold_action(self._hold_codes.get(job.job_id), self._releases[job.job_id])
            if action == HoldAction.KEEP:
                self._kept_held.add(job.job_id)
                log.warning("held pilot left for the operator", extra={"job_id": job.job_id, "reason": job.reason})
            else:
                decided[action].append((job.job_id, why))
        if decided[HoldAction.RELEASE]:
            ids = [job_id for job_id, _ in decided[HoldAction.RELEASE]]
            await self._act(htcondor2.JobAction.Release, ids, "frazil: releasing held pilot")
            for job_id, why in decided[HoldAction.RELEASE]:
                self._releases[job_id] += 1
                self._released += 1
                self._jobs[job_id].state = JobState.PENDING
                log.info("held pilot released", extra={"job_id": job_id, "why": why})
        if decided[HoldAction.REMOVE]:
            ids = [job_id for job_id, _ in decided[HoldAction.REMOVE]]
            await self._act(htcondor2.JobAction.Remove, ids, "frazil: removing held pilot")
            for job_id, why in decided[HoldAction.REMOVE]:
                job = self._jobs[job_id]
                self.removed_held.append({"job_id": job_id, "site": job.shape.site, "reason": job.reason,
                                          "action": why, "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())})
                log.warning("held pilot removed", extra={"job_id": job_id, "site": job.shape.site,
                                                         "reason": job.reason})
                self._end(job_id, JobState.CANCELLED, job.reason)
            self._forget_ended()

    def counts(self) -> ProviderCounts:
        return self.add_live(self.ended.counts(self.name, submitted=self._submitted, released_held=self._released,
                                               removed_held=list(self.removed_held)))

    # -------------------------------------------------------------- internals

    def _prepare(self, shape: PilotShape) -> htcondor2.Submit:
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{shape.name}-{time.monotonic_ns() % 1_000_000}"
        submit_dir = self.options.submit_dir / stamp
        token_file = submit_dir / "frazil.token"
        write_secret(token_file, self.mint_token())  # 0600; HTCondor transfers it to the pilot's sandbox
        description = self.renderer.render(shape, submit_dir, token_file, self.group_batchsys.get(shape.group))
        (submit_dir / "pilot.sub").write_text(description)
        return build_submit(description)

    async def _act(self, action: htcondor2.JobAction, ids: list[str], reason: str) -> None:
        try:
            await asyncio.to_thread(self.schedd().act, action, ids, reason)
        except Exception as exc:
            raise ProviderError(f"HTCondor {action.name.lower()} of {len(ids)} pilot(s) failed: {exc}") from None

    def _state_of(self, job_id: str) -> JobState:
        job = self._jobs.get(job_id)
        return job.state if job is not None else self.ended.get(job_id)

    def _apply(self, change: Change) -> None:
        job = self._jobs.get(change.job_id)
        if job is None:  # not ours, or already ended: a reconciliation finds pilots of other replicas
            return
        if change.state.terminal:
            self._end(change.job_id, change.state, change.reason)
            return
        job.state = change.state
        if change.state == JobState.RUNNING:
            job.started = change.time
        if change.state == JobState.HELD:
            job.reason = change.reason
            self._hold_codes[job.job_id] = change.hold_code
            self._kept_held.discard(job.job_id)

    def _end(self, job_id: str, state: JobState, reason: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.state.terminal:
            return
        job.state, job.reason = state, reason
        self.ended.record(job_id, state)

    async def _reconcile(self, schedd: Schedd) -> None:
        try:
            ads = await asyncio.to_thread(schedd.query, self.constraint, PROJECTION)
        except Exception as exc:
            raise ProviderError(f"HTCondor query failed: {exc}") from None
        seen: set[str] = set()
        for ad in ads:
            job_id = _job_id(ad)
            seen.add(job_id)
            state = JOB_STATES.get(int(ad.get("JobStatus", 1)), JobState.PENDING)
            job = self._jobs.get(job_id)
            if job is None:  # submitted by an earlier run of this server or another replica
                job = PilotJob(job_id=job_id, shape=_shape_of(ad), state=state,
                               submitted=float(ad.get("QDate", time.time())))
                self._jobs[job_id] = job
            if state.terminal:
                self._end(job_id, state, str(ad.get("RemoveReason") or "left the queue"))
                continue
            job.state = state
            if state == JobState.RUNNING and ad.get("JobCurrentStartDate") is not None:
                job.started = float(ad["JobCurrentStartDate"])
            if state == JobState.HELD:
                job.reason = str(ad.get("HoldReason", "") or "held")
                self._hold_codes[job_id] = _int_or_none(ad.get("HoldReasonCode"))
        gone = [job_id for job_id, job in self._jobs.items() if job_id not in seen and not job.state.terminal]
        if gone:
            await self._finish_from_history(schedd, gone)

    async def _finish_from_history(self, schedd: Schedd, job_ids: list[str]) -> None:
        ads: list[Any] = []
        for start in range(0, len(job_ids), HISTORY_CHUNK):
            chunk = job_ids[start:start + HISTORY_CHUNK]
            ids = " || ".join(f"(ClusterId == {c} && ProcId == {p})" for c, p in (j.split(".") for j in chunk))
            try:
                ads += await asyncio.to_thread(schedd.history, ids, PROJECTION, len(chunk))
            except Exception as exc:  # history is only for the reason; the jobs are gone either way
                log.warning("HTCondor history failed", extra={"error": str(exc)})
        found = {_job_id(ad): ad for ad in ads}
        for job_id in job_ids:
            ad = found.get(job_id)
            if ad is None:
                self._end(job_id, JobState.UNKNOWN, "left the queue")
                continue
            state = JOB_STATES.get(int(ad.get("JobStatus", 4)), JobState.UNKNOWN)
            if state == JobState.COMPLETED and int(ad.get("ExitCode", 0) or 0) != 0:
                state = JobState.FAILED
            reason = ad.get("RemoveReason") or ad.get("HoldReason") or f"exit code {ad.get('ExitCode', '?')}"
            self._end(job_id, state if state.terminal else JobState.UNKNOWN, str(reason))

    def _forget_ended(self) -> None:
        for job_id in [j for j, job in self._jobs.items() if job.state.terminal]:
            del self._jobs[job_id]
            self._hold_codes.pop(job_id, None)
            self._releases.pop(job_id, None)
            self._kept_held.discard(job_id)


def real_schedd(name: str = "", collector: str = "") -> Callable[[], Schedd]:
    """A factory for the real schedd: the local one, or ``name`` located through ``collector``."""
    def factory() -> Schedd:
        if not name:
            return htcondor2.Schedd()
        coll = htcondor2.Collector(collector) if collector else htcondor2.Collector()
        return htcondor2.Schedd(coll.locate(htcondor2.DaemonType.Schedd, name))
    return factory
