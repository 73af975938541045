"""The HTCondor provider: pilots as HTCondor jobs, through the htcondor2 bindings.

Submit descriptions come from ``condor_templates/`` (CPU and GPU pilot),
rendered with jinja2 and checked by building an ``htcondor2.Submit`` before
anything reaches the schedd. All pilots of one shape in one round are one
``Schedd.submit`` with ``itemdata`` (one cluster, one proc per pilot).

Which pilots are ours is read back from the schedd every round
(``FrazilPilot`` and ``FrazilServer`` ClassAd attributes; the shape is in
``FrazilCpu``/``FrazilMemory``/...), so the provider keeps no state that a
restart or a second server replica could lose. Jobs that left the queue are
looked up in ``Schedd.history`` for their reason. Held pilots are removed
(a held glidein never resumes by itself) and the hold reason is kept for
``GET /providers``; idle pilots the queue no longer needs are removed with
``Schedd.act``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import classad2
import htcondor2
import jinja2

from common.resources import condor_time_category
from server.provisioning.base import (
    DONE, HELD, IDLE, RUNNING, PilotJob, PilotShape, Provider, ProviderCounts, ProviderError,
)
from server.provisioning.local import write_secret

log = logging.getLogger("frazil.server.provisioning")

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "condor_templates"
DEFAULT_IMAGE = "/cvmfs/singularity.opensciencegrid.org/frazil/pilot:latest"
"""Default container for pilots (bootstrap 'container'); operators set their own with ``pilot_image``."""
DEFAULT_GPU_CAPABILITY = 6.1
BOOTSTRAPS = ("container", "shared", "bundle")
# JobStatus codes: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring output, 7 suspended
JOB_STATES = {1: IDLE, 2: RUNNING, 3: DONE, 4: DONE, 5: HELD, 6: RUNNING, 7: IDLE}
PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "RemoveReason", "ExitCode", "QDate",
              "JobCurrentStartDate", "FrazilSite", "FrazilCpu", "FrazilGpu", "FrazilMemory", "FrazilDisk",
              "FrazilHours", "FrazilOS"]
KEPT_HELD = 50
HISTORY_CHUNK = 500
"""Jobs looked up per Schedd.history call (one constraint naming each of them)."""
PRUNE_EVERY_SECONDS = 3600.0
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

    def __post_init__(self) -> None:
        if self.bootstrap not in BOOTSTRAPS:
            raise ValueError(f"pilot_bootstrap must be one of {', '.join(BOOTSTRAPS)}, got {self.bootstrap!r}")
        for name, value in (("server URL", self.server_url), ("pilot_command", self.command),
                            ("pilot bundle", self.bundle), ("pilot_image", self.image)):
            if not _SAFE_WORD.match(value):
                raise ValueError(f"{name} {value!r}: only letters, digits and _.:/@+- are allowed in a submit file")


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

    def render(self, shape: PilotShape, submit_dir: Path, token_file: Path) -> str:
        if not _SAFE_WORD.match(shape.site) or any(not _SAFE_WORD.match(o) or "," in o for o in shape.os):
            raise DescriptionError(f"site {shape.site!r} / os {shape.os!r}: not allowed in a submit file")
        opts = self.options
        template = self.env.get_template("pilot-gpu.sub" if shape.gpu else "pilot-cpu.sub")
        image = opts.image if opts.bootstrap == "container" else ""
        return template.render(
            shape=shape, site=shape.site, server_url=opts.server_url, bootstrap=opts.bootstrap,
            command=opts.command, bundle=opts.bundle, image=image, token_file=str(token_file),
            submit_dir=str(submit_dir), event_log=str(opts.submit_dir / "pilots.jel"),
            memory_mb=int(round(shape.memory * 1000)), disk_kb=int(round(shape.disk * 1e6 + 1e6)),
            hours=f"{shape.time:g}", wall_minutes=int(shape.time * 60),
            time=condor_time_category(shape.time), gpu_capability=opts.gpu_capability,
            requirements=site_requirement(shape.site, opts.site_requirements.get(shape.site)),
            extra_lines=opts.site_lines.get(shape.site, []))


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
                      os=tuple(o for o in os_text.split(",") if o))


def _job_id(ad: classad2.ClassAd) -> str:
    return f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"


class CondorProvider(Provider):
    name = "htcondor"

    def __init__(self, *, options: CondorOptions, schedd_factory: Callable[[], Any],
                 mint_token: Callable[[], str], keep_submit_dirs_seconds: float = 8 * 86400) -> None:
        self.options = options
        self.renderer = DescriptionRenderer(options)
        self.schedd_factory = schedd_factory
        self.mint_token = mint_token
        self._schedd: Any = None
        self._jobs: dict[str, PilotJob] = {}
        self._submitted = 0
        self._done = 0
        self.removed_held: collections.deque[dict[str, str]] = collections.deque(maxlen=KEPT_HELD)
        self.keep_submit_dirs_seconds = keep_submit_dirs_seconds
        self._pruned = 0.0

    def schedd(self) -> Any:
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
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{shape.name}-{time.monotonic_ns() % 1_000_000}"
        submit_dir = self.options.submit_dir / stamp
        token_file = submit_dir / "frazil.token"
        write_secret(token_file, self.mint_token())  # 0600; HTCondor transfers it to the pilot's sandbox
        description = self.renderer.render(shape, submit_dir, token_file)
        (submit_dir / "pilot.sub").write_text(description)
        submit = build_submit(description)
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
            self._jobs[job_id] = PilotJob(job_id=job_id, shape=shape, state=IDLE, submitted=now)
        self._submitted += len(ids)
        log.info("pilots submitted", extra={"cluster": cluster, "count": len(ids), "shape": shape.name,
                                            "site": shape.site})
        return ids

    async def status(self, job_ids: list[str] | None = None) -> dict[str, str]:
        schedd = self.schedd()
        try:
            ads = await asyncio.to_thread(schedd.query, self.constraint, PROJECTION)
        except Exception as exc:
            raise ProviderError(f"HTCondor query failed: {exc}") from None
        seen: set[str] = set()
        held: list[tuple[str, str]] = []
        for ad in ads:
            job_id = _job_id(ad)
            seen.add(job_id)
            state = JOB_STATES.get(int(ad.get("JobStatus", 1)), IDLE)
            job = self._jobs.get(job_id)
            if job is None:  # submitted by an earlier run of this server or another replica
                job = PilotJob(job_id=job_id, shape=_shape_of(ad), state=state,
                               submitted=float(ad.get("QDate", time.time())))
                self._jobs[job_id] = job
            job.state = state
            if state == RUNNING and ad.get("JobCurrentStartDate") is not None:
                job.started = float(ad["JobCurrentStartDate"])
            if state == HELD:
                job.reason = str(ad.get("HoldReason", "") or "held")
                held.append((job_id, job.reason))
        gone = [job_id for job_id, job in self._jobs.items() if job_id not in seen and job.state != DONE]
        if gone:
            await self._finish_from_history(schedd, gone)
        if held:
            await self._remove_held(schedd, held)
        states = {job_id: job.state for job_id, job in self._jobs.items()}
        self._forget_done()
        if time.time() - self._pruned > PRUNE_EVERY_SECONDS:
            self._pruned = time.time()
            self.prune_submit_dirs()
        wanted = job_ids if job_ids is not None else list(states)
        return {job_id: states.get(job_id, DONE) for job_id in wanted}

    async def cancel(self, job_ids: list[str], reason: str = "") -> list[str]:
        if not job_ids:
            return []
        schedd = self.schedd()
        why = f"frazil: {reason or 'not needed'}"
        try:
            await asyncio.to_thread(schedd.act, htcondor2.JobAction.Remove, list(job_ids), why)
        except Exception as exc:
            raise ProviderError(f"HTCondor remove failed: {exc}") from None
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is not None:
                job.state, job.reason = DONE, why
                self._done += 1
        log.info("pilots removed", extra={"count": len(job_ids), "reason": why})
        return list(job_ids)

    def jobs(self) -> list[PilotJob]:
        return [job for job in self._jobs.values() if job.state != DONE]

    def counts(self) -> ProviderCounts:
        counts = ProviderCounts(self.name, submitted=self._submitted, done=self._done,
                                removed_held=list(self.removed_held))
        for job in self._jobs.values():
            if job.state == IDLE:
                counts.idle += 1
            elif job.state == RUNNING:
                counts.running += 1
            elif job.state == HELD:
                counts.held += 1
        return counts

    # -------------------------------------------------------------- internals

    def prune_submit_dirs(self) -> list[Path]:
        """Delete submit directories (with their token files) older than the tokens'
        lifetime: pilots that old are long gone, and a token file should not outlive
        its use. Returns what was deleted."""
        cutoff = time.time() - self.keep_submit_dirs_seconds
        removed = []
        root = self.options.submit_dir
        for path in root.iterdir() if root.is_dir() else []:
            if path.is_dir() and (path / "pilot.sub").exists() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    async def _finish_from_history(self, schedd: Any, job_ids: list[str]) -> None:
        ads: list[Any] = []
        for start in range(0, len(job_ids), HISTORY_CHUNK):
            chunk = job_ids[start:start + HISTORY_CHUNK]
            ids = " || ".join(f"(ClusterId == {c} && ProcId == {p})" for c, p in (j.split(".") for j in chunk))
            try:
                ads += await asyncio.to_thread(schedd.history, ids, PROJECTION, len(chunk))
            except Exception as exc:  # history is only for the reason; the jobs are gone either way
                log.warning("HTCondor history failed", extra={"error": str(exc)})
        reasons = {_job_id(ad): str(ad.get("RemoveReason") or ad.get("HoldReason")
                                    or f"exit code {ad.get('ExitCode', '?')}") for ad in ads}
        for job_id in job_ids:
            job = self._jobs[job_id]
            job.state, job.reason = DONE, reasons.get(job_id, "left the queue")
            self._done += 1

    async def _remove_held(self, schedd: Any, held: list[tuple[str, str]]) -> None:
        ids = [job_id for job_id, _ in held]
        try:
            await asyncio.to_thread(schedd.act, htcondor2.JobAction.Remove, ids, "frazil: removing held pilot")
        except Exception as exc:
            raise ProviderError(f"HTCondor remove of held pilots failed: {exc}") from None
        for job_id, reason in held:
            job = self._jobs[job_id]
            job.state = DONE
            self._done += 1
            self.removed_held.append({"job_id": job_id, "site": job.shape.site, "reason": reason,
                                      "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())})
            log.warning("held pilot removed", extra={"job_id": job_id, "site": job.shape.site, "reason": reason})

    def _forget_done(self) -> None:
        for job_id in [j for j, job in self._jobs.items() if job.state == DONE]:
            del self._jobs[job_id]


def real_schedd(name: str = "", collector: str = "") -> Callable[[], Any]:
    """A factory for the real schedd: the local one, or ``name`` located through ``collector``."""
    def factory() -> Any:
        if not name:
            return htcondor2.Schedd()
        coll = htcondor2.Collector(collector) if collector else htcondor2.Collector()
        return htcondor2.Schedd(coll.locate(htcondor2.DaemonType.Schedd, name))
    return factory
