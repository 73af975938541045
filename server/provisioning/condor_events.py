"""HTCondor's job event log → pilot states, and what to do with a held pilot.

Every pilot description names one user job event log (``log =
<submit_dir>/pilots.jel``). The schedd's shadow appends an event for every
change of every pilot (submitted, executing, evicted, held, released,
terminated, aborted), so the provider reads only what was appended since the
last round (``htcondor2.JobEventLog``, which remembers its offset) instead of
querying the schedd for every job. A full query remains for the first round
(pilots submitted before a restart) and, rarely, as a reconciliation.

Held pilots, by ``HoldReasonCode`` (HTCondor's codes; docs/operators.md has
the same table):

=====  ========================  =========  ==============================================
code   name                      action     why
=====  ========================  =========  ==============================================
1      UserRequest               keep       an operator held it: theirs to release or remove
6      FailedToCreateProcess     release    a node problem; another slot may work
12     TransferOutputFailed      release    a network hiccup while transferring
13     TransferInputFailed       release    (the token file) likewise
15     SubmittedOnHold           keep       held on purpose at submit
16     SpoolingInput             keep       a transient state of remote submits
21     StartdHeldJob             release    the execute node's policy; another node may run it
34     JobOutOfResources         remove     exceeded its request; demand submits a right-sized pilot
3/26   Job/SystemPolicy          remove     a policy expression: releasing would loop
other                            remove     a held glidein never resumes by itself
=====  ========================  =========  ==============================================

A pilot released :data:`MAX_RELEASES` times is removed on its next hold.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import htcondor2

from server.provisioning.base import JobState


class HoldAction(str, enum.Enum):
    RELEASE = "release"
    REMOVE = "remove"
    KEEP = "keep"


HOLD_ACTIONS: dict[int, tuple[HoldAction, str]] = {
    1: (HoldAction.KEEP, "held by an operator"),
    3: (HoldAction.REMOVE, "held by a job policy"),
    6: (HoldAction.RELEASE, "failed to start on its node"),
    12: (HoldAction.RELEASE, "output transfer failed"),
    13: (HoldAction.RELEASE, "input transfer failed"),
    15: (HoldAction.KEEP, "submitted on hold"),
    16: (HoldAction.KEEP, "spooling input"),
    21: (HoldAction.RELEASE, "held by the execute node"),
    26: (HoldAction.REMOVE, "held by a system policy"),
    34: (HoldAction.REMOVE, "exceeded its resource request"),
}
MAX_RELEASES = 3


def hold_action(code: int | None, releases: int) -> tuple[HoldAction, str]:
    """What to do with a pilot held with ``code`` that was released ``releases`` times."""
    action, why = HOLD_ACTIONS.get(code if code is not None else -1, (HoldAction.REMOVE, "held"))
    if action == HoldAction.RELEASE and releases >= MAX_RELEASES:
        return HoldAction.REMOVE, f"{why}, and already released {releases} times"
    return action, why


@dataclass(frozen=True)
class Change:
    """One event's meaning for a pilot."""

    job_id: str
    state: JobState
    time: float
    reason: str = ""
    hold_code: int | None = None


_EVENTS = htcondor2.JobEventType
_SIMPLE = {
    _EVENTS.SUBMIT: JobState.PENDING,
    _EVENTS.EXECUTE: JobState.RUNNING,
    _EVENTS.JOB_EVICTED: JobState.PENDING,
    _EVENTS.SHADOW_EXCEPTION: JobState.PENDING,
    _EVENTS.JOB_RELEASED: JobState.PENDING,
    _EVENTS.JOB_UNSUSPENDED: JobState.RUNNING,
    _EVENTS.JOB_RECONNECT_FAILED: JobState.PENDING,
}


def change_of(event: Any) -> Change | None:
    """The state change an event means (None: an event that changes no state)."""
    job_id = f"{event.cluster}.{event.proc}"
    when = float(event.timestamp)
    kind = event.type
    if kind in _SIMPLE:
        return Change(job_id, _SIMPLE[kind], when)
    if kind == _EVENTS.JOB_HELD:
        code = event.get("HoldReasonCode")
        return Change(job_id, JobState.HELD, when, str(event.get("HoldReason", "") or "held"),
                      int(code) if code is not None else None)
    if kind == _EVENTS.JOB_TERMINATED:
        if event.get("TerminatedNormally", False):
            value = int(event.get("ReturnValue", 0))
            state = JobState.COMPLETED if value == 0 else JobState.FAILED
            return Change(job_id, state, when, f"exit code {value}")
        return Change(job_id, JobState.FAILED, when, f"killed by signal {event.get('TerminatedBySignal', '?')}")
    if kind == _EVENTS.JOB_ABORTED:
        return Change(job_id, JobState.CANCELLED, when, str(event.get("Reason", "") or "removed"))
    return None


class EventLogReader:
    """New events of one job event log, a round at a time (never blocks)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log: Any = None

    def read(self) -> list[Change]:
        """Changes appended since the last call ([] while the log does not exist yet)."""
        if self._log is None:
            if not self.path.exists():
                return []
            self._log = htcondor2.JobEventLog(str(self.path))
        return [c for c in (change_of(e) for e in self._events()) if c is not None]

    def _events(self) -> Iterator[Any]:
        return iter(self._log.events(stop_after=0))
