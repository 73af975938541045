"""Claiming a task for a pilot (DESIGN.md §3.3): the per-pilot claim rate,
the pilot's standing, the store's claim, and the reply a pilot builds its
TaskPlan from (``common.plan.build_task_plan``) without another call."""
from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from typing import Any, Callable

from common import protocol
from common.batchsys import pilot_words, split_words
from common.protocol import Reason
from common.resources import Resources
from server.credentials.tokens import StorageTokens
from server.errors import Refused
from server.federation.claim import pelican_claim_fields
from server.scheduling.file_roots import claim_fields as file_claim_fields
from server.scheduling.pilots import revive
from server.scheduling.quarantine import ActiveQuarantines
from server.scheduling.work_signal import WorkSignal
from server.settings import Settings
from server.store import ClaimedTask, ClaimRequest, Dataset, InvalidArgumentError, Pilot, Store, Task


class TokenBucket:
    """Per-pilot claim rate limit: a pilot may burst one second's worth of
    claims, then ``rate`` per second. The server tells an eager pilot when to
    come back (429 + Retry-After) instead of pilots sleeping blindly."""

    def __init__(self, rate: float, max_keys: int = 100_000):
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.set_rate(rate)

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)

    def take(self, key: str, now: float | None = None) -> float:
        """0 when a claim may go ahead (and is counted), else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # most recently used last
        while len(self._buckets) > self.max_keys:  # forget the pilots idle longest
            self._buckets.popitem(last=False)
        return wait


class ClaimCache:
    """Config versions are immutable, so a claim need not re-read, re-parse
    and re-serialise the config each time (it is kept as JSON text); dataset
    fields a pilot needs (number, jobs_submitted, debug) are cached for a few
    seconds only, as jobs_submitted may grow; a claimed task is remembered
    until its report, which then need not read it back; an active pilot's
    record is read at most once a second."""

    def __init__(self, max_configs: int = 256, dataset_ttl: float = 5.0, max_claimed: int = 20_000,
                 pilot_ttl: float = 1.0):
        self.max_configs = max_configs
        self.dataset_ttl = dataset_ttl
        self._configs: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._sources: OrderedDict[tuple[str, int | None], dict[str, str]] = OrderedDict()
        self._latest: dict[str, tuple[float, int | None]] = {}
        self._datasets: dict[str, tuple[float, Dataset | None]] = {}
        self._claimed: OrderedDict[tuple[str, str], Task] = OrderedDict()
        self.max_claimed = max_claimed
        self.pilot_ttl = pilot_ttl
        self._pilots: dict[str, tuple[float, Pilot]] = {}
        self.quarantines = ActiveQuarantines()

    async def pilot(self, store: Store, pilot_id: str) -> Pilot | None:
        """The claiming pilot's record. An active pilot that is not draining is
        read again at most once a ``pilot_ttl`` (a second): a claim is the most
        frequent call and a pilot's standing and defaults rarely change, so a
        drain or a deletion takes effect within that second. Any other pilot
        (unknown, lost, exited, draining) is read every time."""
        now = time.monotonic()
        cached = self._pilots.get(pilot_id)
        if cached is not None and now - cached[0] < self.pilot_ttl:
            return cached[1]
        pilot = await store.get_pilot(pilot_id)
        if pilot is None or pilot.state != "active" or pilot.drain:
            self._pilots.pop(pilot_id, None)
            return pilot
        if len(self._pilots) > 100_000:
            self._pilots.clear()
        self._pilots[pilot_id] = (now, pilot)
        return pilot

    def remember(self, claimed: ClaimedTask) -> None:
        """The task as this claim handed it out, for its report (bounded: the
        oldest are forgotten, and their reports read the task instead)."""
        self._claimed[(claimed.task.task_id, claimed.instance_id)] = claimed.task
        while len(self._claimed) > self.max_claimed:
            self._claimed.popitem(last=False)

    def claimed_task(self, task_id: str, instance_id: str) -> Task | None:
        """The task claimed under ``instance_id`` (once: the claim ends with its report)."""
        return self._claimed.pop((task_id, instance_id), None)

    async def config_json(self, store: Store, dataset_id: str, version: int | None) -> tuple[int | None, str]:
        """(version, the config as JSON text; "null" when there is none)."""
        now = time.monotonic()
        if version is None:  # a task without a recorded version runs the newest
            cached = self._latest.get(dataset_id)
            if cached is not None and now - cached[0] < self.dataset_ttl:
                version = cached[1]
        if version is not None and (dataset_id, version) in self._configs:
            self._configs.move_to_end((dataset_id, version))
            return version, self._configs[(dataset_id, version)]
        found = await store.get_config(dataset_id, version)
        if found is None:
            return version, "null"
        if version is None:
            self._latest[dataset_id] = (now, found.version)
        text = json.dumps(found.config, separators=(",", ":"), default=str)
        self._configs[(dataset_id, found.version)] = text
        while len(self._configs) > self.max_configs:
            self._configs.popitem(last=False)
        return found.version, text

    async def sources(self, store: Store, dataset_id: str, version: int | None) -> dict[str, str]:
        """The module sources of that config version ({path: sha512}); immutable
        once the version is claimable, so read once per version."""
        key = (dataset_id, version)
        if key in self._sources:
            self._sources.move_to_end(key)
            return self._sources[key]
        found = await store.get_config_sources(dataset_id, version)
        if version is not None:
            self._sources[key] = found
            while len(self._sources) > self.max_configs:
                self._sources.popitem(last=False)
        return found

    async def _dataset(self, store: Store, dataset_id: str) -> Dataset | None:
        now = time.monotonic()
        cached = self._datasets.get(dataset_id)
        if cached is not None and now - cached[0] < self.dataset_ttl:
            return cached[1]
        dataset = await store.get_dataset(dataset_id)
        if len(self._datasets) > 10_000:
            self._datasets.clear()
        self._datasets[dataset_id] = (now, dataset)
        return dataset

    async def dataset(self, store: Store, dataset_id: str) -> dict[str, Any]:
        """The runtime values a pilot needs for macros."""
        dataset = await self._dataset(store, dataset_id)
        if dataset is None:
            return {"dataset": None, "jobs_submitted": None, "debug": False}
        return {"dataset": dataset.dataset, "jobs_submitted": dataset.jobs_submitted, "debug": dataset.debug}

    async def owner(self, store: Store, dataset_id: str) -> tuple[str, str] | None:
        """(username, group) charged for the dataset's consumed core-hours."""
        dataset = await self._dataset(store, dataset_id)
        return None if dataset is None else (dataset.username, dataset.group)


def retry_after(settings: Settings) -> float:
    """Idle pilots come back after about two queueing rounds: sooner only adds load."""
    return max(1, math.ceil(2 * settings.loop_interval_seconds))


def scratch_base(settings: Settings, origin: str) -> str:
    """Where job_temp/dataset_temp files go when the config names no site_temp:
    the configured store, else this server at the address the pilot reached
    it by (``origin``: a server bound to 0.0.0.0 has no better name for itself)."""
    if settings.scratch_url:
        return settings.scratch_url
    return server_base(settings, origin) + "/scratch"


def server_base(settings: Settings, origin: str) -> str:
    """This server's address as the pilot should use it (its token goes there)."""
    return (settings.public_url or origin).rstrip("/")


def sources_url(base: str, dataset_id: str, sha512: str) -> str:
    """Where a pilot fetches a module source (``GET /datasets/{id}/sources/{sha512}``)."""
    return f"{base}/datasets/{dataset_id}/sources/{sha512}"


async def _task_files(store: Store, task: Any, config_text: str) -> list[dict[str, Any]]:
    """Per-job files (``/datasets/{id}/files``) for tasks that use them, as data
    entries for ``JobContext.task_files``. Only configs that mention
    ``task_files: true`` (compact JSON text) cost a query on the claim path."""
    if '"task_files":true' not in config_text:
        return []
    files = await store.list_files(task.dataset_id, task.task_id)
    return [{"remote": f.remote, "local": f.local, "type": f.type, "movement": f.movement, "transfer": f.transfer}
            for f in files]


async def claim_reply(store: Store, cache: ClaimCache, settings: Settings, claimed: ClaimedTask,
                      scratch_url: str, storage: StorageTokens | None = None, base: str = "",
                      site: str | None = None) -> bytes:
    """The claimed task plus everything a pilot needs to build its TaskPlan,
    as JSON. The cached config text is spliced in rather than serialised
    again for every claim."""
    task = claimed.task
    cache.remember(claimed)
    version, config_text = await cache.config_json(store, task.dataset_id, task.config_version)
    doc = task.to_doc()
    doc.update(await cache.dataset(store, task.dataset_id))
    files = await _task_files(store, task, config_text)
    sources = await cache.sources(store, task.dataset_id, version)
    if sources:  # staged into the work dir by the pilot, fetched with its token
        doc["sources"] = {path: sources_url(base, task.dataset_id, digest) for path, digest in sources.items()}
    doc.update(instance_id=claimed.instance_id, attempt=claimed.attempt, lease_expires=claimed.lease_expires,
               lease_seconds=settings.lease_seconds, heartbeat_seconds=settings.heartbeat_interval,
               config_version=version, scratch_url=scratch_url, files=files, **pelican_claim_fields(settings),
               **file_claim_fields(settings, site))
    if storage is not None:
        token = await storage.for_task(store, dataset_id=task.dataset_id, version=version, config_text=config_text,
                                       task_name=task.name, owner=await cache.owner(store, task.dataset_id),
                                       files=files)
        if token:
            doc["storage_token"] = token  # this attempt's only: never stored (docs/pilot-api.md)
    head = json.dumps(doc, separators=(",", ":"), default=str)
    return f'{head[:-1]},"config":{config_text}}}'.encode()


async def _standing(store: Store, settings: Settings, cache: ClaimCache, pilot_id: str) -> Pilot:
    """The claiming pilot, if it may get a task; else Refused with the reason."""
    pilot = await cache.pilot(store, pilot_id)
    if pilot is None:
        raise Refused(404, f"unknown pilot_id {pilot_id!r}: register with POST /pilots first",
                      reason=Reason.UNKNOWN_PILOT)
    await revive(store, pilot)
    if pilot.state != "active":
        raise Refused(404, f"pilot {pilot_id} has {pilot.state}: no new tasks", reason=Reason.PILOT_EXITED)
    if pilot.drain:
        raise Refused(404, f"pilot {pilot_id} is draining: no new tasks", retry_after=retry_after(settings),
                      reason=Reason.DRAINING)
    return pilot


async def claim(store: Store, settings: Settings, limiter: TokenBucket, cache: ClaimCache,
                asked: protocol.ClaimRequest, *, origin: str, storage: StorageTokens | None = None,
                signal: WorkSignal | None = None, gone: Callable[[], bool] = lambda: False) -> bytes:
    """Claim one queued task that fits the pilot's free resources; the reply
    document (a protocol.ClaimReply) as JSON. Refused, with a reason and when
    to come back, when the pilot claims too fast, is unknown, has left or
    drains, or when nothing fits.

    With ``asked.wait`` (at most ``claim_wait_max_seconds``) a claim that
    finds nothing waits for ``signal`` (tasks were queued) and tries again,
    until the wait is over or the pilot hung up (``gone``): an idle pilot
    gets new work within a queueing round, and costs the server one request
    per wait instead of a poll every few seconds. Nothing of the store is
    held while it waits."""
    pilot_id = asked.pilot_id
    wait = limiter.take(pilot_id)
    if wait > 0:
        raise Refused(429, f"pilot {pilot_id} is claiming faster than {settings.claim_rate_per_pilot:g}/s",
                      retry_after=wait, reason=Reason.RATE_LIMITED)
    try:
        free = Resources(**asked.resources.to_json())
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"key 'resources': {exc}") from None
    pilot = await _standing(store, settings, cache, pilot_id)
    group, _ = split_words(pilot.os)  # the batchsys group it registered with ('' for none)
    request = ClaimRequest(pilot_id=pilot_id, free=free, group=group,
                           os=pilot_words(group, asked.os) if asked.os else list(pilot.os),
                           site=pilot.site if asked.site is None else asked.site,
                           lease_seconds=settings.lease_seconds,
                           host=pilot.hostname if asked.hostname is None else asked.hostname)
    blocked = await cache.quarantines.blocking(store, request.host or "", request.site or "")
    if blocked is not None:  # no more work here: the pilot drains, finishing what it runs
        await store.set_pilot_drain(pilot_id, True)
        raise Refused(403, f"{blocked.kind} {blocked.name} is quarantined until {blocked.expires}: {blocked.reason}",
                      reason=Reason.QUARANTINED)
    deadline = time.monotonic() + min(asked.wait, settings.claim_wait_max_seconds)
    while (claimed := await store.claim(request)) is None:
        left = deadline - time.monotonic()
        if signal is None or left <= 0 or not await signal.wait(left) or gone():
            raise Refused(404, "no queued task fits these resources", retry_after=retry_after(settings),
                          reason=Reason.NOTHING_FITS)
        await _standing(store, settings, cache, pilot_id)  # drained or deleted while it waited
    return await claim_reply(store, cache, settings, claimed, scratch_base(settings, origin), storage,
                             server_base(settings, origin), site=request.site)
