"""The Slurm provider: pilots as Slurm batch jobs (Parsl's SlurmProvider is the model).

One ``sbatch`` per shape and round: a job array when it starts several
pilots (``--array=0-N``), a plain job for one. The batch script is written
to the submit directory (which must be on a file system the compute nodes
see, as the pilot's token file is read from there) and ``exec``s
``frazil pilot``; the pilot sizes its slot from the allocation's
environment (pilot/detect.py). Every pilot is named ``frazil-pilot`` and
carries ``--comment frazil;<server url>;<shape>``, so the provider finds
its pilots again after a restart or from another server replica.

State: ``squeue`` for what slurmctld holds (JSON where the installed Slurm
has it), and for jobs that left it ``sacct`` where accounting storage
exists, else the job completion file (``JobCompLoc``). ``status()`` only
reads. A pilot job that fails before its pilot could run (bad partition
line, unwritable directory, a node that cannot launch it) is counted as
*failed to start*, its reason shown in ``GET /providers`` and on the admin
page, and new submissions pause (doubling, as the local provider does) so a
broken site gets one clear error instead of a submit storm.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from common.batchsys import slurm_lines
from server.provisioning.base import (
    BatchProvider, EndedJobs, JobState, PilotJob, PilotShape, ProviderCounts, ProviderError,
)
from server.provisioning.local import MAX_BACKOFF_SECONDS, REPO_ROOT, write_secret
from server.provisioning.slurm_records import (
    NAME, NEVER_RUNS, SACCT_FIELDS, SQUEUE_FORMAT, SlurmJob, from_jobcomp, from_sacct_json, from_sacct_text,
    from_squeue_json, from_squeue_text,
)

log = logging.getLogger("frazil.server.provisioning")

QUICK_FAILURE_SECONDS = 30.0
"""A pilot job that failed within this time of starting (or never started) failed to start."""
COMMAND_TIMEOUT = 60.0
KEPT_PROBLEMS = 50
_SAFE = re.compile(r"^[A-Za-z0-9_.:/@+,=%-]*$")
SITE_KEYS = ("partition", "account", "qos", "constraint", "time_limit", "cpus", "memory", "gres", "sbatch_lines")


@dataclass
class SlurmSite:
    """Per-site sbatch settings (``[pilot_sites.NAME]`` tables; empty = Slurm's default)."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    constraint: str = ""
    time_limit: int = 0
    """Most minutes a pilot job asks for (0: the pilot's lifetime); pilots read their real end."""
    cpus: int = 0
    """Fewest CPUs a pilot asks for (whole-node pilots run several tasks side by side)."""
    memory: float = 0.0
    """Fewest GB of memory a pilot asks for."""
    gres: str = "gpu"
    """The GRES name GPU pilots ask for (``gpu``, ``gpu:a100``)."""
    sbatch_lines: list[str] = field(default_factory=list)
    """Extra ``#SBATCH`` options, e.g. ``--licenses=cvmfs``."""

    def __post_init__(self) -> None:
        for name in ("partition", "account", "qos", "gres"):
            if not _SAFE.match(getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)!r}: only letters, digits and _.:/@+,=%- are allowed")
        if "\n" in self.constraint or "'" in self.constraint:
            raise ValueError(f"constraint {self.constraint!r}: one line without quotes")
        for line in self.sbatch_lines:
            if not isinstance(line, str) or "\n" in line or not line.strip().startswith("-"):
                raise ValueError(f"sbatch_lines: {line!r} is not one sbatch option (e.g. '--licenses=cvmfs')")
        for name in ("time_limit", "cpus"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if isinstance(self.memory, bool) or not isinstance(self.memory, (int, float)) or self.memory < 0:
            raise ValueError(f"memory must be a number of GB >= 0, got {self.memory!r}")


@dataclass
class SlurmOptions:
    server_url: str
    submit_dir: Path
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "server.cli", "pilot"])
    """The pilot's command line (default: this installation's Python, as on the server)."""
    bootstrap: str = "shared"
    """shared: ``command`` where the nodes see it; bundle: ``python3 <bundle>`` (make pilot-bundle)."""
    bundle: str = "build/frazil-pilot.pyz"
    sites: dict[str, SlurmSite] = field(default_factory=dict)
    json: bool | None = None
    """squeue/sacct JSON: None = use it when the installed Slurm has it."""

    def __post_init__(self) -> None:
        if self.bootstrap not in ("shared", "bundle"):
            raise ValueError(f"pilot_bootstrap for Slurm must be shared or bundle, got {self.bootstrap!r}")
        for word in [self.server_url, self.bundle, *self.command]:
            if not _SAFE.match(word):
                raise ValueError(f"{word!r}: only letters, digits and _.:/@+,=%- are allowed in a batch script")


def comment_for(server_url: str, shape: PilotShape) -> str:
    return (f"frazil;{server_url};cpu={shape.cpu};gpu={shape.gpu};mem={shape.memory:g};disk={shape.disk:g};"
            f"time={shape.time:g};site={shape.site};os={'+'.join(shape.os)};group={shape.group}")


def shape_from_comment(comment: str, server_url: str) -> PilotShape | None:
    """The shape of one of this server's pilots (None: not ours)."""
    prefix = f"frazil;{server_url};"
    if not comment.startswith(prefix):
        return None
    values = dict(part.partition("=")[::2] for part in comment[len(prefix):].split(";"))
    try:
        return PilotShape(cpu=int(values["cpu"]), gpu=int(values["gpu"]), memory=float(values["mem"]),
                          disk=float(values["disk"]), time=float(values["time"]), site=values.get("site", ""),
                          os=tuple(o for o in values.get("os", "").split("+") if o), group=values.get("group", ""))
    except (KeyError, ValueError):
        return None


def render_script(options: SlurmOptions, shape: PilotShape, site: SlurmSite, directory: Path,
                  token_file: Path, batchsys: Mapping[str, Any] | None = None) -> str:
    """The batch script of one submission (all its array elements); ``batchsys``: the checked
    overrides of the shape's group (their ``slurm`` entries become #SBATCH lines)."""
    minutes = max(1, math.ceil(shape.time * 60))
    if site.time_limit:
        minutes = min(minutes, site.time_limit)
    lines = ["#!/bin/bash", f"#SBATCH --job-name={NAME}",
             f"#SBATCH --comment={comment_for(options.server_url, shape)}",
             f"#SBATCH --output={directory}/pilot-%A_%a.out", "#SBATCH --nodes=1 --ntasks=1",
             f"#SBATCH --cpus-per-task={max(shape.cpu, site.cpus, 1)}",
             f"#SBATCH --mem={int(math.ceil(max(shape.memory, site.memory) * 1000))}",
             f"#SBATCH --time={minutes}"]
    if shape.gpu:
        lines.append(f"#SBATCH --gres={site.gres}:{shape.gpu}")
    for name in ("partition", "account", "qos"):
        if getattr(site, name):
            lines.append(f"#SBATCH --{name}={getattr(site, name)}")
    if site.constraint:
        lines.append(f"#SBATCH --constraint='{site.constraint}'")
    lines += [f"#SBATCH {line.strip()}" for line in site.sbatch_lines]
    lines += slurm_lines(batchsys) if shape.group else []
    if options.bootstrap == "bundle":
        command = ["python3", options.bundle]
    else:
        command = list(options.command)
    lines += [
        "# pilots name themselves by the array element squeue and scancel use",
        "export FRAZIL_PROVIDER=slurm",
        'if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then',
        '  export FRAZIL_PROVIDER_JOB_ID="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        "else", '  export FRAZIL_PROVIDER_JOB_ID="${SLURM_JOB_ID}"', "fi",
        "unset FRAZIL_TOKEN FRAZIL_URL FRAZIL_TOKEN_FILE",
    ]
    if options.bootstrap == "shared":
        lines.append(f'export PYTHONPATH="{REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"')
    argv = [*command, "--server", options.server_url, "--token-file", str(token_file), "--workdir", '"$workdir"']
    if shape.site:
        argv += ["--site", shape.site]
    if shape.group:  # it claims only its batchsys group's tasks
        argv += ["--group", shape.group]
    lines += ['workdir="${TMPDIR:-/tmp}/frazil-pilot-${SLURM_JOB_ID}"', 'mkdir -p "$workdir" && cd "$workdir"',
              "exec " + " ".join(argv)]
    return "\n".join(lines) + "\n"


class SlurmProvider(BatchProvider):
    name = "slurm"
    marker = "pilot.sh"

    def __init__(self, *, options: SlurmOptions, mint_token: Callable[[], str],
                 environ: dict[str, str] | None = None, keep_submit_dirs_seconds: float = 8 * 86400) -> None:
        super().__init__(options.submit_dir, keep_submit_dirs_seconds)
        self.options = options
        self.mint_token = mint_token
        self.environ = dict(os.environ if environ is None else environ)
        self._dirs: dict[str, Path] = {}
        self.ended = EndedJobs()
        self._submitted = 0
        self._failed_to_start = 0
        self._quick_failures = 0
        self._paused_until = 0.0
        self._json: bool | None = options.json
        self._accounting: bool | None = None
        self._jobcomp: Path | None | bool = None
        self._jobcomp_offset = 0
        self._jobcomp_seen: dict[str, SlurmJob] = {}
        self._first = True
        self.removed_held: list[dict[str, str]] = []
        self.last_error = ""

    # -------------------------------------------------------------- commands

    async def _run(self, *argv: str, check: bool = True) -> tuple[int, str, str]:
        """A Slurm command, without blocking the event loop."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.environ)
        except OSError as exc:
            raise ProviderError(f"cannot run {argv[0]}: {exc.strerror or exc} (is Slurm installed here?)") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise ProviderError(f"{argv[0]} did not answer within {COMMAND_TIMEOUT:g} s") from None
        code = proc.returncode or 0
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace").strip()
        if check and code != 0:
            raise ProviderError(f"{' '.join(argv[:2])}: {stderr.splitlines()[-1] if stderr else f'exit {code}'}")
        return code, stdout, stderr

    # -------------------------------------------------------------- Provider

    async def submit(self, shape: PilotShape, count: int) -> list[str]:
        if count <= 0 or time.time() < self._paused_until:
            return []  # recent pilots failed to start: more of them would only repeat that
        site = self.options.sites.get(shape.site, SlurmSite())
        directory = await asyncio.to_thread(self._prepare, shape, site)
        argv = ["sbatch", "--parsable"]
        if count > 1:
            argv.append(f"--array=0-{count - 1}")
        code, out, err = await self._run(*argv, str(directory / "pilot.sh"), check=False)
        if code != 0:
            raise ProviderError(f"sbatch of {count} {shape.name} pilot(s) for site {shape.site or '-'} failed: "
                                f"{err.splitlines()[-1] if err else f'exit {code}'}")
        job = out.strip().split(";")[0]
        ids = [f"{job}_{i}" for i in range(count)] if count > 1 else [job]
        now = time.time()
        for job_id in ids:
            self._jobs[job_id] = PilotJob(job_id=job_id, shape=shape, state=JobState.PENDING, submitted=now)
            self._dirs[job_id] = directory
        self._submitted += len(ids)
        log.info("pilots submitted", extra={"slurm_job": job, "count": len(ids), "shape": shape.name,
                                            "site": shape.site})
        return ids

    async def status(self, job_ids: list[str] | None = None) -> dict[str, JobState]:
        seen = {job.job_id: job for job in await self._squeue()}
        for job_id, record in seen.items():
            job = self._jobs.get(job_id)
            if job is None:
                if not self._first or record.state.terminal:
                    continue  # only the first round adopts pilots of an earlier run or another replica
                shape = shape_from_comment(record.comment, self.options.server_url)
                if shape is None:
                    continue
                job = PilotJob(job_id=job_id, shape=shape, state=record.state, submitted=time.time())
                self._jobs[job_id] = job
            self._apply(job, record)
        self._first = False
        gone = [j for j, job in self._jobs.items() if j not in seen and not job.state.terminal]
        if gone:
            for record in await self._finished(gone):
                if record.job_id in self._jobs:
                    self._apply(self._jobs[record.job_id], record)
        wanted = job_ids if job_ids is not None else list(self._jobs)
        states = {job_id: self._state_of(job_id) for job_id in wanted}
        for job_id in [j for j, job in self._jobs.items() if job.state.terminal]:
            del self._jobs[job_id]
        self._dirs = {j: d for j, d in self._dirs.items() if j in self._jobs}
        return states

    async def cancel(self, job_ids: list[str], reason: str = "") -> list[str]:
        if not job_ids:
            return []
        await self._run("scancel", *job_ids)
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is not None and not job.state.terminal:
                job.state, job.reason = JobState.CANCELLED, f"frazil: {reason or 'not needed'}"
                self.ended.record(job_id, JobState.CANCELLED)
        log.info("pilots cancelled", extra={"count": len(job_ids), "reason": reason})
        return list(job_ids)

    async def handle_held(self) -> None:
        """Pilots pending for a reason that waiting will not fix are cancelled;
        pilots an operator held (JobHeldUser/Admin) are left alone."""
        stuck = [job for job in self._jobs.values() if job.state == JobState.HELD and job.reason in NEVER_RUNS]
        if not stuck:
            return
        await self.cancel([job.job_id for job in stuck], "cannot run")
        for job in stuck:
            self.removed_held.append({"job_id": job.job_id, "site": job.shape.site, "reason": job.reason,
                                      "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())})
            self._problem(f"pilot job {job.job_id} (site {job.shape.site or '-'}) cannot run: {job.reason}")
        del self.removed_held[:-KEPT_PROBLEMS]

    def counts(self) -> ProviderCounts:
        return self.add_live(self.ended.counts(self.name, submitted=self._submitted,
                                               failed_to_start=self._failed_to_start,
                                               removed_held=list(self.removed_held), last_error=self.last_error))

    # -------------------------------------------------------------- internals

    def _prepare(self, shape: PilotShape, site: SlurmSite) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{shape.name}-{time.monotonic_ns() % 1_000_000}"
        directory = self.options.submit_dir / stamp
        token_file = directory / "frazil.token"
        write_secret(token_file, self.mint_token())  # 0600: readable by the pilot's user only
        script = directory / "pilot.sh"
        script.write_text(render_script(self.options, shape, site, directory, token_file,
                                        self.group_batchsys.get(shape.group)))
        script.chmod(0o700)
        return directory

    def _state_of(self, job_id: str) -> JobState:
        job = self._jobs.get(job_id)
        return job.state if job is not None else self.ended.get(job_id)

    def _apply(self, job: PilotJob, record: SlurmJob) -> None:
        if job.state.terminal:
            return
        job.state, job.reason = record.state, record.reason
        if record.state == JobState.RUNNING and record.start:
            job.started = record.start
        if record.state.terminal:
            self.ended.record(job.job_id, record.state)
            self._check_start(job, record)

    def _check_start(self, job: PilotJob, record: SlurmJob) -> None:
        """A failed job that ran for moments (or not at all) failed to start."""
        ran = record.ran_for
        if record.state != JobState.FAILED or (ran is not None and ran > QUICK_FAILURE_SECONDS):
            self._quick_failures = 0 if record.state == JobState.COMPLETED else self._quick_failures
            return
        self._failed_to_start += 1
        self._quick_failures += 1
        pause = min(MAX_BACKOFF_SECONDS, 5.0 * 2 ** (self._quick_failures - 1))
        self._paused_until = time.time() + pause
        why = record.reason if record.reason not in ("", "None") else f"exit code {record.exit_code or '?'}"
        self._problem(f"pilot job {job.job_id} (site {job.shape.site or '-'}) failed to start: "
                      f"{record.slurm_state} ({why}){self._output_tail(job.job_id)}; new pilots paused {pause:g} s")

    def _problem(self, message: str) -> None:
        self.last_error = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: {message}"
        log.error("slurm pilot problem", extra={"error": message})

    def _output_tail(self, job_id: str) -> str:
        directory = self._dirs.get(job_id)
        if directory is None:
            return ""
        name = job_id if "_" in job_id else f"{job_id}_4294967294"
        try:
            lines = (directory / f"pilot-{name}.out").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f"; its output ends: {lines[-1][:300]}" if lines else ""

    async def _squeue(self) -> list[SlurmJob]:
        user = self.environ.get("USER") or _user()
        if self._json is not False:
            code, out, _ = await self._run("squeue", "--json", check=False)
            if code == 0 and out.lstrip().startswith("{"):
                self._json = True
                return from_squeue_json(out)
            if self._json:
                raise ProviderError("squeue --json failed")
            self._json = False
        _, out, _ = await self._run("squeue", "-h", "-r", "--states=all", "-u", user, "-n", NAME,
                                    "-o", SQUEUE_FORMAT)
        return from_squeue_text(out)

    async def _finished(self, job_ids: list[str]) -> list[SlurmJob]:
        """Jobs slurmctld no longer holds: sacct where there is accounting, else the jobcomp file."""
        if self._accounting is not False:
            records = await self._sacct(job_ids)
            if records is not None:
                return records
        return await asyncio.to_thread(self._read_jobcomp, set(job_ids), await self._jobcomp_path())

    async def _sacct(self, job_ids: list[str]) -> list[SlurmJob] | None:
        ids = ",".join(job_ids)
        if self._json is not False:
            code, out, _ = await self._run("sacct", "--json", "-X", "-j", ids, check=False)
            if code == 0 and out.lstrip().startswith("{"):
                self._accounting = True
                return from_sacct_json(out)
        code, out, err = await self._run("sacct", "-n", "-P", "-X", "-j", ids, "-o", SACCT_FIELDS, check=False)
        if code != 0 or "accounting storage is disabled" in (err + out):
            self._accounting = False
            return None
        self._accounting = True
        return from_sacct_text(out)

    async def _jobcomp_path(self) -> Path | None:
        if self._jobcomp is None:
            _, out, _ = await self._run("scontrol", "show", "config")
            settings = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", out, re.MULTILINE))
            if settings.get("JobCompType") == "jobcomp/filetxt" and settings.get("JobCompLoc"):
                self._jobcomp = Path(settings["JobCompLoc"])
            else:
                self._jobcomp = False
                log.warning("Slurm has neither accounting nor a jobcomp file: ended pilots' states are unknown")
        return self._jobcomp if isinstance(self._jobcomp, Path) else None

    def _read_jobcomp(self, wanted: set[str], path: Path | None) -> list[SlurmJob]:
        if path is not None:
            try:
                with open(path, errors="replace") as handle:
                    handle.seek(self._jobcomp_offset)
                    text = handle.read()
            except OSError:
                text = ""
            complete = text[:text.rfind("\n") + 1]  # a line being written is read next round
            self._jobcomp_offset += len(complete.encode())
            for record in from_jobcomp(complete.splitlines()):
                if record.job_id in self._jobs:
                    self._jobcomp_seen[record.job_id] = record
            self._jobcomp_seen = {j: r for j, r in self._jobcomp_seen.items() if j in self._jobs}
        found = [self._jobcomp_seen.pop(j) for j in wanted if j in self._jobcomp_seen]
        missing = wanted - {r.job_id for r in found}
        now = time.time()
        for job_id in missing:  # neither squeue nor any record knows it: gone without a trace
            job = self._jobs[job_id]
            if now - job.submitted > 120:
                found.append(SlurmJob(job_id, JobState.UNKNOWN, "UNKNOWN", "left Slurm without a record"))
        return found


def _user() -> str:
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name
