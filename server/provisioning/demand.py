"""How many pilots of which shape each site needs (DESIGN.md §3.7).

Input: the queued tasks grouped by resource class and site (the store's
``queued_classes``), the pilots that registered (their free resources), and
what the provider already submitted. Output: a :class:`Plan` — pilots to
submit per shape, idle pilots to cancel.

Rules, each against a real failure mode of pilot systems:

* A queued task is covered by a pilot that is already there (a registered
  pilot whose free resources fit it, a pilot still waiting in the batch
  queue, or one that started moments ago and has not registered yet).
  Counting registered pilots that *fit but do not claim* as cover is what
  stops a site whose pilots match nothing (wrong OS, broken node) from being
  flooded: nothing more is submitted there until those pilots leave.
* Per-site limits: ``max_idle`` pilots waiting in the batch queue,
  ``max_running`` pilots in all, ``max_per_cycle`` submitted per round, and a
  ramp-up (a site gets ``ramp_up`` pilots, then as many more per round as it
  already runs), so an unknown site is probed before it gets hundreds.
* Pilots waiting in the batch queue beyond what the queue needs are
  cancelled (idle surplus); running pilots are never killed here — they
  finish their tasks and leave when idle.
* Tasks with a site requirement go only to that site; the others fill the
  sites in configuration order.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from common.batchsys import split_words
from common.resources import Resources
from server.provisioning.base import ACTIVE, JobState, PilotJob, PilotShape

MAX_PER_PILOT = 64
"""Most tasks one registered pilot is assumed to take (bounds the arithmetic of huge slots)."""
REGISTRATION_GRACE_SECONDS = 120.0
"""A started pilot that has not registered within this time no longer counts as cover."""


@dataclass
class SiteConfig:
    """One place pilots go to, with its limits (HTCondor: a GLIDEIN_Site; local: this machine)."""

    name: str
    max_idle: int = 10
    max_running: int = 100
    max_per_cycle: int = 20
    ramp_up: int = 2
    options: dict[str, Any] = field(default_factory=dict)
    """Provider-specific settings (HTCondor: requirements, image, extra submit lines)."""

    def __post_init__(self) -> None:
        for name in ("max_idle", "max_running", "max_per_cycle", "ramp_up"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"site {self.name!r}: {name} must be a whole number >= 0, got {value!r}")


@dataclass(frozen=True)
class QueuedClass:
    """The part of a store ``QueueClass`` that demand needs (the store's record, or a test's)."""

    cpu: float
    gpu: float
    memory: float
    disk: float
    time: float
    site: str
    os: tuple[str, ...]
    queued: int
    group: str = ""
    """The batchsys group of its tasks ('' for none); ``os`` is then without the group words."""

    @classmethod
    def of(cls, queue_class: Any) -> "QueuedClass":
        group, os_words = split_words(tuple(queue_class.os or ()))
        return cls(cpu=queue_class.cpu, gpu=queue_class.gpu, memory=queue_class.memory, disk=queue_class.disk,
                   time=queue_class.time, site=queue_class.site or "", os=os_words,
                   queued=int(queue_class.queued), group=group)

    @property
    def need(self) -> Resources:
        return Resources(cpu=int(math.ceil(self.cpu)), gpu=int(math.ceil(self.gpu)), memory=self.memory,
                         disk=self.disk, time=self.time)


@dataclass
class RegisteredPilot:
    """A pilot the store knows as active: where it is and what it has free."""

    site: str
    free: Resources
    drain: bool = False
    pilot_id: str = ""
    busy: bool = False
    """Runs at least one task."""
    group: str = ""
    """Its batchsys group: it covers only that group's tasks (and a plain pilot only plain tasks)."""

    @classmethod
    def of(cls, pilot: Any) -> "RegisteredPilot | None":
        try:
            free = Resources.from_requirements(_numbers(pilot.free or pilot.resources))
        except ValueError:
            return None
        return cls(site=pilot.site or "", free=free, drain=bool(pilot.drain), pilot_id=pilot.pilot_id,
                   busy=bool(pilot.tasks), group=split_words(tuple(pilot.os or ()))[0])


def _numbers(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("cpu", "gpu") and isinstance(value, float):
            value = int(value)
        out[key] = value
    return out


@dataclass
class Plan:
    submit: list[tuple[PilotShape, int]] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    drain: list[str] = field(default_factory=list)
    """Idle registered pilots that fit nothing queued while other work waits for room: asked to leave."""
    unserved: list[QueuedClass] = field(default_factory=list)
    """Classes no site can take (an unknown site, or too big for every site)."""

    @property
    def submitted(self) -> int:
        return sum(n for _, n in self.submit)


def shape_for(need: Resources, site: str, os: Sequence[str], min_hours: float, group: str = "") -> PilotShape:
    """The pilot for a class: its resources, and a lifetime with margin.

    A pilot whose lifetime equals the task's time could never claim the task
    (claims need ``time <= remaining lifetime`` and the clock starts before
    the first claim), so it gets a quarter more and at least half an hour."""
    hours = max(min_hours, need.time + max(0.5, 0.25 * need.time))
    return PilotShape(cpu=max(need.cpu, 1), gpu=need.gpu, memory=need.memory, disk=need.disk,
                      time=round(hours, 3), site=site, os=tuple(os), group=group)


def fit_count(free: Resources, need: Resources) -> int:
    """How many tasks of ``need`` fit in ``free`` side by side (0 if one does not)."""
    if not need.fits(free):
        return 0
    counts = [MAX_PER_PILOT]
    for name in ("cpu", "gpu", "memory", "disk"):
        wanted = getattr(need, name)
        if wanted > 0:
            counts.append(int(getattr(free, name) // wanted + 1e-9))
    return max(0, min(counts))


def _class_fits_site(need: Resources, capacity: Resources | None) -> bool:
    return capacity is None or need.with_time(0).fits(capacity.with_time(0))


def plan(classes: Iterable[QueuedClass], sites: Sequence[SiteConfig], jobs: Iterable[PilotJob],
         pilots: Iterable[RegisteredPilot], *, now: float, min_hours: float = 0.0,
         capacity: Resources | None = None,
         registration_grace: float = REGISTRATION_GRACE_SECONDS,
         serves: Callable[[SiteConfig, QueuedClass], bool] | None = None) -> Plan:
    """One provisioning round. ``capacity``: the total a provider may hand
    out at once (the local provider's slots); None = the batch system decides.
    ``serves(site, class)``: whether that site's pilots can run the class (its OS
    or container need, its size: server/provisioning/matchable.py); a class no
    site serves is unserved (never counted as covered, nothing submitted for it)."""
    result = Plan()
    active_jobs = [j for j in jobs if j.state in ACTIVE]
    free_pilots = [p for p in pilots if not p.drain]
    site_names = {s.name for s in sites}
    remaining: dict[QueuedClass, int] = {}
    # Bigger needs first: GPU and large classes are the hardest to place, and
    # a small class can use a pilot sized for a big one but not the reverse.
    ordered = sorted((c for c in classes if c.queued > 0),
                     key=lambda c: (-c.gpu, -c.cpu, -c.memory, -c.disk, -c.queued))
    for qc in ordered:
        if qc.site and qc.site not in site_names:
            result.unserved.append(qc)
        elif not sites or not _class_fits_site(qc.need, capacity):
            result.unserved.append(qc)
        elif serves is not None and not any(serves(site, qc) for site in sites):
            result.unserved.append(qc)
        else:
            remaining[qc] = qc.queued
    for site in sites:
        _plan_site(site, remaining, active_jobs, free_pilots, result, now=now, min_hours=min_hours,
                   capacity=capacity, registration_grace=registration_grace,
                   serves=(lambda qc, site=site: serves(site, qc)) if serves else None)
    return result


def _plan_site(site: SiteConfig, remaining: dict[QueuedClass, int], jobs: list[PilotJob],
               pilots: list[RegisteredPilot], result: Plan, *, now: float, min_hours: float,
               capacity: Resources | None, registration_grace: float,
               serves: Callable[[QueuedClass], bool] | None = None) -> None:
    site_jobs = [j for j in jobs if j.shape.site == site.name]
    idle_jobs = [j for j in site_jobs if j.state == JobState.PENDING]
    running_jobs = [j for j in site_jobs if j.state == JobState.RUNNING]
    young = [j for j in running_jobs if j.started is not None and now - j.started < registration_grace]
    frees = [p.free for p in pilots if p.site == site.name]
    groups = [p.group for p in pilots if p.site == site.name]
    idle_by_shape = Counter(j.shape for j in idle_jobs)
    young_by_shape = Counter(j.shape for j in young)
    wants: dict[PilotShape, int] = {}
    needed_idle: Counter[PilotShape] = Counter()
    eligible = [qc for qc in remaining if remaining[qc] > 0 and qc.site in ("", site.name)
                and (serves is None or serves(qc))]
    for qc in eligible:
        need = qc.need
        if not _class_fits_site(need, capacity):
            continue
        shape = shape_for(need, site.name, qc.os, min_hours, qc.group)
        left = remaining[qc]
        # cover from registered pilots' free room (consumed so that two classes do not count it twice)
        for index, free in enumerate(frees):
            if left <= 0:
                break
            if groups[index] != qc.group:  # a pilot of another batchsys group never claims these
                continue
            take = min(left, fit_count(free, need))
            if take:
                left -= take
                frees[index] = _minus(free, need, take)
        for pool in (young_by_shape, idle_by_shape):
            take = min(left, pool[shape])
            if take:
                left -= take
                pool[shape] -= take
                if pool is idle_by_shape:
                    needed_idle[shape] += take
        if left > 0:
            wants[shape] = wants.get(shape, 0) + left
        remaining[qc] = left  # whatever this site does not take, the next site may
    # idle surplus: batch-queued pilots that no queued task needs any more
    surplus = Counter(j.shape for j in idle_jobs)
    surplus.subtract(needed_idle)
    for job in sorted(idle_jobs, key=lambda j: -j.submitted):  # newest first: the oldest start soonest
        if surplus[job.shape] > 0:
            result.cancel.append(job.job_id)
            surplus[job.shape] -= 1
    kept_idle = len(idle_jobs) - sum(1 for j in idle_jobs if j.job_id in result.cancel)
    budget = min(site.max_idle - kept_idle, site.max_running - kept_idle - len(running_jobs),
                 site.max_per_cycle, max(site.ramp_up, len(running_jobs)))
    room = None
    if capacity is not None:
        room = capacity
        for job in site_jobs:
            if job.job_id not in result.cancel:
                room = _minus(room, job.shape.resources, 1, clamp=True)
    counts: Counter[PilotShape] = Counter()
    order = sorted(wants, key=lambda s: -wants[s])
    while budget > 0 and order:
        progressed = False
        for shape in list(order):
            if budget <= 0:
                break
            if room is not None and not shape.fits_in(room):
                order.remove(shape)
                continue
            counts[shape] += 1
            wants[shape] -= 1
            budget -= 1
            progressed = True
            if room is not None:
                room = _minus(room, shape.resources, 1, clamp=True)
            if wants[shape] <= 0:
                order.remove(shape)
        if not progressed:
            break
    for shape, count in counts.items():
        result.submit.append((shape, count))
    if any(wants[s] > 0 for s in wants):
        # Work waits for room, so an idle pilot that can run none of it gives its
        # slot back (it is drained: it finishes nothing, it just leaves).
        needs = [qc.need for qc in eligible]
        for pilot in pilots:
            if pilot.site == site.name and not pilot.busy and pilot.pilot_id \
                    and not any(fit_count(pilot.free, need) for need in needs):
                result.drain.append(pilot.pilot_id)
    _give_back(remaining, counts, site)


def _give_back(remaining: dict[QueuedClass, int], counts: Counter[PilotShape], site: SiteConfig) -> None:
    """Tasks left uncovered after this site's submissions stay for the next site.

    ``remaining`` was reduced by the cover this site already had; here the
    new submissions are credited to the classes (one task per pilot)."""
    by_shape = Counter(counts)
    for qc in list(remaining):
        if remaining[qc] <= 0 or qc.site not in ("", site.name):
            continue
        for shape in list(by_shape):
            if by_shape[shape] <= 0 or shape.group != qc.group or shape.cpu < qc.need.cpu or shape.gpu < qc.need.gpu \
                    or shape.memory < qc.memory or shape.disk < qc.disk:
                continue
            take = min(remaining[qc], by_shape[shape])
            remaining[qc] -= take
            by_shape[shape] -= take


def _minus(free: Resources, need: Resources, times: int, clamp: bool = False) -> Resources:
    values = {}
    for name in ("cpu", "gpu", "memory", "disk"):
        left = getattr(free, name) - getattr(need, name) * times
        values[name] = max(left, 0) if clamp else left
    return Resources(cpu=int(values["cpu"]), gpu=int(values["gpu"]), memory=max(values["memory"], 0.0),
                     disk=max(values["disk"], 0.0), time=free.time)
