"""The provider interface (Parsl-style): submit N pilots of a shape, ask the
status of what was submitted, cancel some of it (DESIGN.md §3.7).

A provider only starts and stops *generic* pilots; it never sees a task.
What to submit is decided by :mod:`server.provisioning.demand` from the
queue, so the local and HTCondor providers share that logic and differ only
in how a pilot comes to life.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

from common.resources import Resources, resource_class

# Provider-side states of a submitted pilot. "idle" = waiting for a slot
# (HTCondor idle, a local process that has not started yet); "running" = the
# pilot program runs; "held" = the batch system stopped it and needs an
# operator (HTCondor hold); "done" = gone (exited, removed, completed).
IDLE, RUNNING, HELD, DONE = "idle", "running", "held", "done"
STATES: tuple[str, ...] = (IDLE, RUNNING, HELD, DONE)


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
    state: str
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
    running: int = 0
    held: int = 0
    done: int = 0
    removed_held: list[dict[str, str]] = field(default_factory=list)
    """The latest held pilots removed, with their hold reasons (newest last)."""
    last_error: str = ""
    """Why pilots could not be started lately (empty: no problem)."""

    def to_doc(self) -> dict[str, object]:
        return {"name": self.name, "submitted": self.submitted, "idle": self.idle, "running": self.running,
                "held": self.held, "done": self.done, "removed_held": list(self.removed_held),
                "last_error": self.last_error}


class ProviderError(Exception):
    """The batch system refused or failed a request (logged; the loop retries later)."""


class Provider(abc.ABC):
    """Starts and stops pilots. Implementations keep their own record of
    what they submitted (``jobs``) so the demand loop can count idle and
    running pilots per shape without asking the batch system twice."""

    name: str = "provider"

    @abc.abstractmethod
    async def submit(self, shape: PilotShape, count: int) -> list[str]:
        """Start ``count`` pilots of ``shape``; return their job ids (fewer if
        the provider had room for fewer)."""

    @abc.abstractmethod
    async def status(self, job_ids: list[str] | None = None) -> dict[str, str]:
        """Refresh and return the state (one of :data:`STATES`) of the given
        jobs, or of every job not yet known to be done."""

    @abc.abstractmethod
    async def cancel(self, job_ids: list[str], reason: str = "") -> list[str]:
        """Stop these pilots; return the ids that were cancelled."""

    @abc.abstractmethod
    def jobs(self) -> list[PilotJob]:
        """The pilots submitted and not yet done, as of the last :meth:`status`."""

    @abc.abstractmethod
    def counts(self) -> ProviderCounts:
        """Totals for the admin API."""

    async def close(self) -> None:
        """Shutdown: providers whose pilots live in this process stop them."""
