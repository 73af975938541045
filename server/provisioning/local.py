"""The local provider: ``frazil pilot`` processes on this machine (the default).

Pilots get slices of the configured slots (``local_slots``, e.g.
``cpus=2,memory=4GB``); the provider never hands out more than that at once.
Each pilot gets its own system token in a 0600 file (never on its command
line, where ``ps`` would show it), its own directory and log. A pilot that
exits is not restarted blindly: the demand loop decides whether a new one is
needed. On shutdown every pilot gets SIGTERM (it reports its tasks as
evicted, so they are retried at once) and, after a grace period, SIGKILL.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

from common.resources import Resources, parse_size
from server.provisioning.pilot_user import PilotUser, PilotUserError, ensure_pilot_user, needs_pilot_user
from server.provisioning.base import EndedJobs, JobState, PilotJob, PilotShape, Provider, ProviderCounts

log = logging.getLogger("frazil.server.provisioning")

STOP_GRACE_SECONDS = 10.0
QUICK_EXIT_SECONDS = 30.0
"""A pilot that fails within this time of its start is broken, not finished."""
MAX_BACKOFF_SECONDS = 600.0
REPO_ROOT = Path(__file__).resolve().parents[2]
SLOT_KEYS = {"cpus": "cpu", "cpu": "cpu", "gpus": "gpu", "gpu": "gpu", "memory": "memory", "disk": "disk"}


def parse_slots(spec: str, data_dir: Path) -> Resources:
    """``cpus=2,memory=4GB[,gpus=0][,disk=20GB]`` → the local provider's total.

    Memory and disk default to what the host has (total memory, free disk
    under the data directory); GPUs default to none, so a GPU task is never
    sent to a machine that was not declared to have one."""
    values: dict[str, float | int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, raw = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in SLOT_KEYS:
            raise ValueError(f"local_slots: cannot read {part!r}; expected e.g. 'cpus=2,memory=4GB,gpus=0,disk=20GB'")
        name = SLOT_KEYS[key]
        try:
            if name in ("cpu", "gpu"):
                values[name] = int(raw)
                if values[name] < 0:
                    raise ValueError(raw)
            else:
                values[name] = parse_size(raw.strip())
        except ValueError:
            raise ValueError(f"local_slots: {key} must be a {'whole number' if name in ('cpu', 'gpu') else 'size'}, "
                             f"got {raw!r}") from None
    if "memory" not in values:
        values["memory"] = round(psutil.virtual_memory().total / 1e9, 3)
    if "disk" not in values:
        data_dir.mkdir(parents=True, exist_ok=True)
        values["disk"] = round(shutil.disk_usage(data_dir).free / 1e9, 3)
    return Resources(cpu=int(values.get("cpu", os.cpu_count() or 1)), gpu=int(values.get("gpu", 0)),
                     memory=float(values["memory"]), disk=float(values["disk"]), time=0.0)


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` readable by this user only, before anything is written to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")


@dataclass
class _Local:
    job: PilotJob
    process: subprocess.Popen[bytes]
    directory: Path


class LocalProvider(Provider):
    name = "local"

    def __init__(self, *, server_url: str, slots: Resources, directory: Path, mint_token: Callable[[], str],
                 site: str = "local", command: list[str] | None = None, stop_grace: float = STOP_GRACE_SECONDS,
                 keep_logs: int = 50, hide: list[str] | None = None, run_as: str = "") -> None:
        self.server_url = server_url
        self.hide = list(hide or [])
        """Paths no module may see (the server's data dir, key, database): the pilots' --hide."""
        self.run_as = run_as
        """The user pilots run as when this process is root ('' = this process's user)."""
        self.slots = slots
        self.directory = directory.resolve()  # pilots run in their own directory: paths must be absolute
        self.mint_token = mint_token
        self.site = site
        self.command = command or [sys.executable, "-m", "server.cli", "pilot"]
        self.stop_grace = stop_grace
        self.keep_logs = keep_logs
        self._live: dict[str, _Local] = {}
        self._counter = itertools.count(1)
        self._submitted = 0
        self._finished: list[str] = []
        self.ended = EndedJobs()
        self._quick_failures = 0
        self._paused_until = 0.0
        self.last_error = ""
        self._user: PilotUser | None = None
        self._user_checked = False

    # -------------------------------------------------------------- Provider

    async def submit(self, shape: PilotShape, count: int) -> list[str]:
        started: list[str] = []
        if time.time() < self._paused_until:
            return started  # recent pilots died at once: starting more would only repeat that
        for _ in range(count):
            if not shape.fits_in(self.free()):
                break  # the slots are full: the demand loop tries again next round
            try:
                started.append(await asyncio.to_thread(self._start, shape))  # files and fork: off the event loop
            except PilotUserError as exc:  # nothing can start: say why on the dashboard
                self.last_error = str(exc)
                log.error("local pilot not started", extra={"error": self.last_error})
                break
        return started

    async def status(self, job_ids: list[str] | None = None) -> dict[str, JobState]:
        states: dict[str, JobState] = {}
        for job_id, local in list(self._live.items()):
            code = local.process.poll()
            if code is not None:
                self._note_exit(local, code)
                self._finish(job_id, JobState.COMPLETED if code == 0 else JobState.FAILED,
                             f"exited with code {code}")
            states[job_id] = local.job.state
        wanted = set(job_ids) if job_ids is not None else set(states)
        return {job_id: states.get(job_id) or self.ended.get(job_id) for job_id in wanted}

    async def cancel(self, job_ids: list[str], reason: str = "") -> list[str]:
        cancelled = [job_id for job_id in job_ids if job_id in self._live]
        await self._stop(cancelled, reason or "cancelled")
        return cancelled

    def jobs(self) -> list[PilotJob]:
        return [local.job for local in self._live.values()]

    def counts(self) -> ProviderCounts:
        counts = self.ended.counts(self.name, submitted=self._submitted, last_error=self.last_error)
        for local in self._live.values():
            counts.add(local.job.state)
        return counts

    async def housekeeping(self) -> None:
        """Delete the logs of all but the newest ``keep_logs`` ended pilots."""
        excess = len(self._finished) - self.keep_logs
        if excess > 0:
            old, self._finished = self._finished[:excess], self._finished[excess:]
            await asyncio.to_thread(_remove_dirs, [self.directory / job_id for job_id in old])

    async def close(self) -> None:
        await self._stop(list(self._live), "server shutting down")

    # -------------------------------------------------------------- local pilots

    def free(self) -> Resources:
        """The slots not handed to a live pilot."""
        cpu, gpu, memory, disk = self.slots.cpu, self.slots.gpu, self.slots.memory, self.slots.disk
        for local in self._live.values():
            shape = local.job.shape
            cpu, gpu, memory, disk = cpu - shape.cpu, gpu - shape.gpu, memory - shape.memory, disk - shape.disk
        return Resources(cpu=max(cpu, 0), gpu=max(gpu, 0), memory=max(memory, 0.0), disk=max(disk, 0.0), time=0.0)

    def _start(self, shape: PilotShape) -> str:
        job_id = f"local-{os.getpid()}-{next(self._counter)}"
        directory = self.directory / job_id
        directory.mkdir(parents=True, exist_ok=True)
        token_file = directory / "pilot.token"
        write_secret(token_file, self.mint_token())
        env = self._environment(job_id)
        user = self._pilot_user(directory, env)
        if user is not None:  # a root server's pilots run as frazil-pilot: their own dir and token only
            user.give(directory)
            user.give(token_file)
        argv = [*self.command, "--server", self.server_url, "--token-file", str(token_file),
                "--cpus", str(shape.cpu), "--gpus", str(shape.gpu), "--memory", f"{shape.memory:g}",
                "--disk", f"{shape.disk:g}", "--time", f"{shape.time:g}", "--site", shape.site or self.site]
        if shape.group:  # it claims only its batchsys group's tasks
            argv += ["--group", shape.group]
        for path in self.hide:
            argv += ["--hide", path]
        as_user: dict[str, Any] = {}
        if user is not None:
            env["HOME"] = str(directory)
            as_user = user.popen_args()
        with open(directory / "pilot.log", "ab") as out:
            process = subprocess.Popen(argv, cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True, **as_user)
        now = time.time()
        job = PilotJob(job_id=job_id, shape=shape, state=JobState.RUNNING, submitted=now, started=now)
        self._live[job_id] = _Local(job, process, directory)
        self._submitted += 1
        log.info("local pilot started", extra={"job_id": job_id, "pid": process.pid, "shape": shape.name})
        return job_id

    def _environment(self, job_id: str) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("FRAZIL_TOKEN", "FRAZIL_TOKEN_FILE", "FRAZIL_URL"):  # its own token and server, never the operator's
            env.pop(name, None)
        env["FRAZIL_PROVIDER"] = self.name
        env["FRAZIL_PROVIDER_JOB_ID"] = job_id
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def _pilot_user(self, directory: Path, env: dict[str, str]) -> PilotUser | None:
        """``run_as`` when this server is root (created on first use, checked once), else None.

        A pilot user that cannot start the pilot here (the program or the data dir lies under
        a directory private to root) would leave every task queued: pilots then run as this
        server's user, and the reason stays in ``last_error`` for the dashboard."""
        if not self.run_as or not needs_pilot_user() or self._user_checked:
            return self._user
        self._user_checked = True
        user = ensure_pilot_user(self.run_as)
        os.chmod(self.directory, 0o711)
        user.give(directory)
        problem = user.cannot_run(self.command, directory, env)
        if problem:
            os.chown(directory, os.geteuid(), os.getegid())
            self.last_error = (f"local pilots run as root: {user.name} cannot start {self.command[0]} here "
                               f"({problem}); make the program and {self.directory} reachable by "
                               f"{user.name}, or set local_pilot_user = \"\" to silence this")
            log.error("local pilots run as the server's user", extra={"error": self.last_error})
            return None
        self._user = user
        return user

    def _note_exit(self, local: _Local, code: int) -> None:
        """Pilots that fail right after starting (bad token, wrong server URL,
        missing program) pause new starts, doubling the pause each time, so a
        broken setup shows one clear error instead of a restart storm."""
        started = local.job.started or local.job.submitted
        if code == 0 or time.time() - started > QUICK_EXIT_SECONDS:
            self._quick_failures = 0
            return
        self._quick_failures += 1
        pause = min(MAX_BACKOFF_SECONDS, 5.0 * 2 ** (self._quick_failures - 1))
        self._paused_until = time.time() + pause
        self.last_error = f"pilot {local.job.job_id} exited with code {code} after " \
                          f"{time.time() - started:.0f} s: {_last_line(local.directory / 'pilot.log')}"
        log.error("local pilot failed at start; pausing new pilots",
                  extra={"job_id": local.job.job_id, "code": code, "pause_seconds": pause, "error": self.last_error})

    def _finish(self, job_id: str, state: JobState, reason: str) -> None:
        local = self._live.pop(job_id, None)
        if local is None:
            return
        local.job.state, local.job.reason = state, reason
        self.ended.record(job_id, state)
        (local.directory / "pilot.token").unlink(missing_ok=True)  # the token dies with its pilot
        log.info("local pilot ended", extra={"job_id": job_id, "reason": reason})
        self._finished.append(job_id)  # its log is kept for debugging until housekeeping() prunes

    async def _stop(self, job_ids: list[str], reason: str) -> None:
        locals_ = [self._live[j] for j in job_ids if j in self._live]
        for local in locals_:
            # SIGTERM to the pilot alone: it ends its tasks itself and reports them as evicted
            if local.process.poll() is None:
                local.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while time.monotonic() < deadline and any(local.process.poll() is None for local in locals_):
            await asyncio.sleep(0.1)
        for local in locals_:
            if local.process.poll() is None:
                _signal(local.process, signal.SIGKILL)
                local.process.wait()
            self._finish(local.job.job_id, JobState.CANCELLED, reason)


def _remove_dirs(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1][:500] if lines else "(empty log)"


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the pilot's whole process group (its task processes too)."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
