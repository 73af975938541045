"""The provider interface (Parsl-style): submit N pilots of a shape, ask the
status of what was submitted, cancel some of it (DESIGN.md §3.7).

A provider only starts and stops *generic* pilots; it never sees a task.
What to submit is decided by :mod:`server.provisioning.demand` from the
queue, so the local and HTCondor providers share that logic and differ only
in how a pilot comes to life.
"""
from __future__ import annotations

import abc
import asyncio
import collections
import enum
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from common.resources import Resources, resource_class

class JobState(str, enum.Enum):
    """Provider-side state of a submitted pilot (Parsl's ``JobState``).

    ``pending``: waiting in the batch queue (HTCondor idle, Slurm PENDING);
    ``running``: the pilot program runs; ``held``: the batch system stopped it
    and will not resume it by itself (HTCondor hold); the last four are
    terminal: ``completed`` (exited 0 / Slurm COMPLETED), ``failed`` (non-zero
    exit, failed launch, node failure, Slurm TIMEOUT/OUT_OF_MEMORY),
    ``cancelled`` (removed by frazil or an operator) and ``unknown`` (left the
    batch system without a record of how)."""

    PENDING = "pending"
    RUNNING = "running"
    HELD = "held"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN})
ACTIVE = frozenset({JobState.PENDING, JobState.RUNNING})
"""States in which a pilot counts as cover for queued work."""


@dataclass(frozen=True)
class PilotShape:
    """What one pilot asks the batch system for, and where.

    ``time`` is the pilot's lifetime in hours (longer than any task it is
    meant for, see :func:`server.provisioning.demand.shape_for`)."""

    cpu: int = 1
    gpu: int = 0
    memory: float = 1.0
    disk: float = 1.0
    time: float = 1.0
    site: str = ""
    os: tuple[str, ...] = ()
    group: str = ""
    """The batchsys group it serves (common/batchsys.py): started with ``--group`` and the
    group's submit lines, it claims only that group's tasks."""

    @property
    def resources(self) -> Resources:
        return Resources(cpu=self.cpu, gpu=self.gpu, memory=self.memory, disk=self.disk, time=self.time)

    @property
    def name(self) -> str:
        """Short label for logs, ClassAds and the admin page (``cpu1-mem2-disk10-t4``)."""
        return resource_class(self.resources)

    def fits_in(self, free: Resources) -> bool:
        """Whether a slot with ``free`` resources can hold this pilot (time ignored)."""
        return self.resources.with_time(0).fits(free.with_time(0))


@dataclass
class PilotJob:
    """One submitted pilot as its provider knows it."""

    job_id: str
    shape: PilotShape
    state: JobState
    submitted: float
    """Epoch seconds of the submit."""
    started: float | None = None
    """Epoch seconds the pilot program started (None while idle)."""
    reason: str = ""
    """Why it is held / was removed / exited, when known."""


@dataclass
class ProviderCounts:
    """Per-provider numbers for ``GET /providers`` and the admin page."""

    name: str
    submitted: int = 0
    idle: int = 0
    """Pending in the batch queue (JobState.PENDING; the name the API has always used)."""
    running: int = 0
    held: int = 0
    done: int = 0
    """Ended in any terminal state; ``ended`` splits them by state."""
    ended: dict[str, int] = field(default_factory=dict)
    failed_to_start: int = 0
    """Pilot jobs the batch system could not start (failed before the pilot ran)."""
    released_held: int = 0
    removed_held: list[dict[str, str]] = field(default_factory=list)
    """The latest held pilots removed, with their hold reasons (newest last)."""
    last_error: str = ""
    """Why pilots could not be started lately (empty: no problem)."""

    def to_doc(self) -> dict[str, object]:
        return {"name": self.name, "submitted": self.submitted, "idle": self.idle, "running": self.running,
                "held": self.held, "done": self.done, "ended": dict(self.ended),
                "failed_to_start": self.failed_to_start, "released_held": self.released_held,
                "removed_held": list(self.removed_held), "last_error": self.last_error}

    def add(self, state: JobState) -> None:
        """Count one pilot in ``state``."""
        if state == JobState.PENDING:
            self.idle += 1
        elif state == JobState.RUNNING:
            self.running += 1
        elif state == JobState.HELD:
            self.held += 1


class EndedJobs:
    """Final states of the pilots that ended lately (bounded), and totals per state:
    what ``status()`` answers for a job no longer in the batch system."""

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self.states: collections.OrderedDict[str, JobState] = collections.OrderedDict()
        self.totals: collections.Counter[str] = collections.Counter()

    def record(self, job_id: str, state: JobState) -> None:
        if job_id in self.states:
            return
        self.states[job_id] = state
        self.totals[state.value] += 1
        while len(self.states) > self.keep:
            self.states.popitem(last=False)

    def get(self, job_id: str) -> JobState:
        return self.states.get(job_id, JobState.UNKNOWN)

    def counts(self, name: str, **values: object) -> ProviderCounts:
        """Counts with the ended totals filled in."""
        return ProviderCounts(name, done=sum(self.totals.values()), ended=dict(self.totals), **values)  # type: ignore[arg-type]


class ProviderError(Exception):
    """The batch system refused or failed a request (logged; the loop retries later)."""


class Provider(abc.ABC):
    """Starts and stops pilots. Implementations keep their own record of
    what they submitted (``jobs``) so the demand loop can count idle and
    running pilots per shape without asking the batch system twice."""

    name: str = "provider"
    group_batchsys: Mapping[str, Mapping[str, Any]] = {}
    """batchsys group -> its checked overrides, as of the last demand round (set_batchsys)."""

    def set_batchsys(self, groups: Mapping[str, Mapping[str, Any]]) -> None:
        """The overrides of the groups queued work has (the demand loop calls it before submitting)."""
        self.group_batchsys = dict(groups)

    @abc.abstractmethod
    async def submit(self, shape: PilotShape, count: int) -> list[str]:
        """Start ``count`` pilots of ``shape``; return their job ids (fewer if
        the provider had room for fewer)."""

    @abc.abstractmethod
    async def status(self, job_ids: list[str] | None = None) -> dict[str, JobState]:
        """Refresh and return the state of the given jobs, or of every job not
        yet known to be done. Reads only: it never removes, releases or
        deletes anything (that is :meth:`handle_held` and :meth:`housekeeping`)."""

    @abc.abstractmethod
    async def cancel(self, job_ids: list[str], reason: str = "") -> list[str]:
        """Stop these pilots; return the ids that were cancelled."""

    @abc.abstractmethod
    def jobs(self) -> list[PilotJob]:
        """The pilots submitted and not yet done, as of the last :meth:`status`."""

    @abc.abstractmethod
    def counts(self) -> ProviderCounts:
        """Totals for the admin API."""

    async def handle_held(self) -> None:
        """Release or remove pilots the batch system holds (a step of the demand
        loop after :meth:`status`; providers without holds do nothing)."""

    async def housekeeping(self) -> None:
        """Delete what ended pilots left behind (submit directories, token files,
        logs); a step of the demand loop, run in a thread where it touches disk."""

    async def close(self) -> None:
        """Shutdown: providers whose pilots live in this process stop them."""


PRUNE_EVERY_SECONDS = 3600.0


class BatchProvider(Provider):
    """What the batch-system providers share: the pilots they know (``_jobs``,
    terminal ones dropped by each provider's status()), and one submit directory
    per submission (script or description, token file, outputs) under
    ``submit_dir``, pruned hourly once older than the pilots' tokens."""

    marker = ""
    """The file that makes a directory one of this provider's submit directories."""

    def __init__(self, submit_dir: Path, keep_submit_dirs_seconds: float) -> None:
        self.submit_dir = submit_dir
        self.keep_submit_dirs_seconds = keep_submit_dirs_seconds
        self._jobs: dict[str, PilotJob] = {}
        self._pruned = 0.0

    def jobs(self) -> list[PilotJob]:
        return [job for job in self._jobs.values() if not job.state.terminal]

    def add_live(self, counts: ProviderCounts) -> ProviderCounts:
        for job in self._jobs.values():
            counts.add(job.state)
        return counts

    async def housekeeping(self) -> None:
        if time.time() - self._pruned > PRUNE_EVERY_SECONDS:
            self._pruned = time.time()
            await asyncio.to_thread(self.prune_submit_dirs)

    def prune_submit_dirs(self) -> list[Path]:
        """Delete submit directories (with their token files) older than the tokens'
        lifetime: pilots that old are long gone, and a token file should not outlive
        its use. Returns what was deleted."""
        cutoff = time.time() - self.keep_submit_dirs_seconds
        removed = []
        root = self.submit_dir
        for path in root.iterdir() if root.is_dir() else []:
            if path.is_dir() and (path / self.marker).exists() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed
