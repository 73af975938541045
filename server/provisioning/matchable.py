"""Which queued work nothing can ever run (issue 14 item 3: no silent starvation).

A queued resource class is *matchable* when some capability could claim it:
a registered active pilot (its site, its total resources, the OS list it
advertised) or a place the configured provider can start pilots (a site, the
largest slot it can make, the OS names its pilots serve: see
:func:`provider_capabilities`). A class nothing matches is *unmatchable*:
the demand loop leaves it out (it is not counted as covered and no pilots
are submitted for it), and the reason is shown in ``GET /datasets/{id}``,
the dataset page and the admin dashboard. The check runs over the handful
of queued classes in a loop (:class:`MatchableService`), never per request;
as soon as a fitting pilot registers, the next round drops the mark (the
claim itself never looked at it: such a pilot claims the task at once).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from common.batchsys import split_words
from common.containers import CONTAINER_NEED, is_sif
from common.osarch import os_string
from common.resources import Resources
from server.provisioning.demand import QueuedClass, SiteConfig

log = logging.getLogger("frazil.server.provisioning")


@dataclass(frozen=True)
class Capability:
    """What pilots of one kind can be: where, how big at most, which OS names they serve."""

    source: str
    """``pilot <id>`` or ``provider <name> site <site>`` (for logs)."""
    site: str
    """The site its pilots report ('' : pilots of any site, as an HTCondor pool without site tables)."""
    slot: Resources | None
    """The largest slot (None: unknown, the batch system decides)."""
    os: frozenset[str]
    """OS names its pilots advertise (CONTAINER_NEED: they run images)."""
    provider: bool = False
    """A place the provider starts pilots (else a registered pilot)."""
    group: str = ""
    """A registered pilot's batchsys group (it serves that group only); providers start pilots of any."""


@dataclass(frozen=True)
class Unmatchable:
    qc: QueuedClass
    class_key: str
    reason: str
    resource_class: str
    """The store's resource class name (``cpu1-mem2-disk1-t1``)."""

    def to_doc(self, tasks: int) -> dict[str, Any]:
        return {"reason": self.reason, "resource_class": self.resource_class, "site": self.qc.site,
                "os": list(self.qc.os), "group": self.qc.group, "tasks": tasks}


def _site_ok(qc: QueuedClass, cap: Capability) -> bool:
    return not qc.site or qc.site == cap.site


def _group_ok(qc: QueuedClass, cap: Capability) -> bool:
    return cap.provider or qc.group == cap.group


def _os_ok(qc: QueuedClass, cap: Capability) -> bool:
    return not qc.os or bool(set(qc.os) & cap.os)


def _size_ok(qc: QueuedClass, cap: Capability, low: Resources | None = None) -> bool:
    """Whether the class's smallest need (``low``; else its ceiling) fits the capability's largest slot."""
    if cap.slot is None:
        return True
    return (low or qc.need).with_time(0).fits(cap.slot.with_time(0))


def reason_for(qc: QueuedClass, caps: Sequence[Capability], low: Resources | None = None) -> str:
    """'' when some capability can run the class, else why none can (the first check that failed everywhere)."""
    if not caps:
        return "no pilot is registered and no provider is configured"
    nobody = ("no registered pilot and no provider site" if any(c.provider for c in caps)
              else "no registered pilot (and no provider is configured)")
    at_site = [c for c in caps if _site_ok(qc, c)]
    if not at_site:
        return f"needs site {qc.site!r}: {nobody} is there"
    in_group = [c for c in at_site if _group_ok(qc, c)]
    if not in_group:
        return (f"needs a pilot of its batchsys group {qc.group}: {nobody} serves it" if qc.group
                else f"needs a pilot of no batchsys group: {nobody} serves it")
    with_os = [c for c in in_group if _os_ok(qc, c)]
    if not with_os:
        if qc.os == (CONTAINER_NEED,):
            return f"needs a container runtime: {nobody} offers one"
        names = " or ".join(qc.os)
        return (f"needs OS {names}: {nobody} serves it (a pilot serves an OS it runs, or one it has the "
                f"os_images image of; a provider site the OSes in its os list and those os_images maps)")
    need = low or qc.need
    if need.gpu and not any(c.slot is None or c.slot.gpu >= need.gpu for c in with_os):
        return f"needs {need.gpu} GPU(s): {nobody} has them"
    if not any(_size_ok(qc, c, need) for c in with_os):
        biggest = max((c.slot for c in with_os if c.slot is not None), key=lambda r: (r.cpu, r.memory, r.disk))
        return (f"needs cpu {need.cpu}, memory {need.memory:g} GB, disk {need.disk:g} GB: above every slot "
                f"(largest: cpu {biggest.cpu}, memory {biggest.memory:g} GB, disk {biggest.disk:g} GB)")
    return ""


def unmatchable(records: Iterable[Any], caps: Sequence[Capability]) -> list[Unmatchable]:
    """The store's queued classes (``QueueClass``) that no capability can run."""
    out = []
    for record in records:
        qc = QueuedClass.of(record)
        reason = reason_for(qc, caps, getattr(record, "smallest", None))
        if reason:
            out.append(Unmatchable(qc, record.class_key, reason, record.resource_class))
    return out


def pilot_capabilities(pilots: Iterable[Any]) -> list[Capability]:
    """Registered active pilots (store ``Pilot`` records) as capabilities: their whole
    resources (free room comes back), their site and advertised OS list."""
    caps = []
    for pilot in pilots:
        try:
            slot = Resources.from_requirements({k: (int(v) if k in ("cpu", "gpu") else v)
                                                for k, v in (pilot.resources or {}).items()})
        except (ValueError, TypeError):
            continue
        group, os_words = split_words(tuple(pilot.os or ()))
        caps.append(Capability(f"pilot {pilot.pilot_id}", pilot.site or "", slot, frozenset(os_words), group=group))
    return caps


def local_os(images: Mapping[str, str]) -> frozenset[str]:
    """What a local pilot on this machine advertises: this OS, and with a runtime on
    PATH ``container`` and every OS whose image is here (the pilot's own rule,
    pilot/sandbox/policy.py, checked from the server's side)."""
    names = {os_string()}
    apptainer = bool(shutil.which("apptainer") or shutil.which("singularity"))
    if apptainer or shutil.which("bwrap"):
        names.add(CONTAINER_NEED)
        for name, image in images.items():
            if (is_sif(image) and apptainer and os.path.isfile(image)) or (not is_sif(image) and os.path.isdir(image)):
                names.add(name)
    return frozenset(names)


def batch_os(site: SiteConfig, images: Mapping[str, str]) -> frozenset[str]:
    """What a batch site's pilots serve: the site's ``os`` list (the OS its nodes run),
    ``container`` and every OS os_images has an image for (the pilot runs the task
    in it, or — HTCondor — runs inside it itself, see htcondor.py)."""
    return frozenset(site.options.get("os", [])) | {CONTAINER_NEED} | set(images)


def provider_capabilities(provider: str, sites: Sequence[SiteConfig], images: Mapping[str, str],
                          local_slots: Resources | None = None) -> list[Capability]:
    """The places the configured provider can start pilots."""
    caps = []
    for site in sites:
        slot = site.options.get("largest_slot")
        if provider == "local":
            caps.append(Capability(f"provider local site {site.name}", site.name, local_slots, local_os(images),
                                   provider=True))
        else:
            caps.append(Capability(f"provider {provider} site {site.name}", site.name,
                                   _slot(slot) if slot else None,
                                   batch_os(site, images), provider=True))
    return caps


def _slot(values: Mapping[str, float]) -> Resources:
    return Resources(cpu=int(values["cpu"]), gpu=int(values["gpu"]), memory=float(values["memory"]),
                     disk=float(values["disk"]), time=0.0)


@dataclass
class Snapshot:
    """The last round's answer, read by handlers and the demand loop (never recomputed per request)."""

    at: float = 0.0
    entries: list[Unmatchable] = field(default_factory=list)
    by_dataset: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def keys(self) -> set[str]:
        return {u.class_key for u in self.entries}

    def for_dataset(self, dataset_id: str) -> list[dict[str, Any]]:
        return list(self.by_dataset.get(dataset_id, []))

    def summary(self) -> list[dict[str, Any]]:
        return [u.to_doc(u.qc.queued) for u in self.entries]


def site_serves(caps: Sequence[Capability]) -> Callable[[SiteConfig, QueuedClass], bool]:
    """demand.plan's ``serves``: whether a provider site's pilots can run a class (OS and size)."""
    by_site = {c.site: c for c in caps}

    def serves(site: SiteConfig, qc: QueuedClass) -> bool:
        cap = by_site.get(site.name)
        return cap is None or (_os_ok(qc, cap) and _size_ok(qc, cap))
    return serves


class MatchableService:
    """Refreshes :class:`Snapshot` every ``interval`` seconds. Every server replica
    runs its own (it only reads the few class rows and active pilots), so each
    answers ``GET /datasets/{id}`` from memory."""

    def __init__(self, store: Any, provider_caps: list[Capability], interval: float = 5.0) -> None:
        self.store = store
        self.provider_caps = provider_caps
        self.interval = interval
        self.snapshot = Snapshot()
        self._task: asyncio.Task[None] | None = None
        self._counts: dict[tuple[str, int], dict[str, int]] = {}
        """(class_key, queued) -> per-dataset counts: a class whose queued number did not
        change is not counted again (its tasks are read only when it changes)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="frazil-matchable")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup: keep the last snapshot, try again next round
                log.warning("unmatchable check failed", exc_info=True)
            await asyncio.sleep(self.interval)

    async def step(self) -> bool:
        records = await self.store.queued_classes()
        pilots = await self.store.list_pilots(state="active")
        caps = self.provider_caps + pilot_capabilities(pilots)
        entries = unmatchable(records, caps)
        wanted = {(u.class_key, u.qc.queued) for u in entries}
        stale = sorted({key for key, _ in wanted - set(self._counts)})
        fresh = await self.store.queued_by_dataset(stale) if stale else {}
        self._counts = {k: self._counts[k] for k in wanted if k in self._counts}
        self._counts.update({(u.class_key, u.qc.queued): fresh.get(u.class_key, {}) for u in entries
                             if u.class_key in stale})
        counts = {key: self._counts[(key, queued)] for key, queued in wanted}
        by_dataset: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            for dataset_id, n in sorted(counts.get(entry.class_key, {}).items()):
                by_dataset.setdefault(dataset_id, []).append(entry.to_doc(n))
        if [u.class_key for u in entries] != [u.class_key for u in self.snapshot.entries]:
            log.info("unmatchable classes", extra={"unmatchable": [u.to_doc(u.qc.queued) for u in entries]})
        self.snapshot = Snapshot(time.time(), entries, by_dataset)
        return False
