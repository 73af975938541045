"""The provisioning service of ``frazil server`` (a cleanup_ctx generator).

Builds the configured provider, then every ``provider_interval_seconds``
runs one demand round under the store lease ``loop.provision`` (the same
runner as the scheduling loops), so with several server replicas exactly one
submits pilots. On shutdown the loop stops first, then the provider (the
local provider stops its pilot processes; HTCondor pilots keep running and
and Slurm pilots keep running and are found again by their ClassAds or job
comments on the next start).
"""
from __future__ import annotations

import logging
import shlex
import socket
import time
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from server.auth import TokenAuthority
from common.containers import os_images
from server.keys import MATCHABLE, METRICS, PROVIDER, PROVISIONER, SETTINGS, STORE, TOKENS
from server.provisioning.base import Provider, ProviderError
from server.provisioning.demand import QueuedClass, RegisteredPilot, SiteConfig, plan
from server.provisioning.htcondor import CondorOptions, CondorProvider, real_schedd
from server.provisioning.local import LocalProvider, parse_slots
from server.provisioning.matchable import Capability, MatchableService, provider_capabilities, site_serves
from server.provisioning.slurm import SlurmOptions, SlurmProvider, SlurmSite
from server.provisioning.sites import sites_from_settings
from server.scheduling.pilots import release_pilot_tasks
from server.scheduling.quarantine import ActiveQuarantines
from server.scheduling.service import LoopRunner, LoopSpec, instance_id
from server.secrets_dir import secret_paths
from server.settings import Settings
from server.store import Store

log = logging.getLogger("frazil.server.provisioning")

PILOT_USER = "frazil-pilot"
"""A glidein (or a Slurm pilot job) may wait in a busy queue for days before it starts."""


class Provisioner:
    """One demand round: refresh the provider's view, plan, act."""

    def __init__(self, store: Store, provider: Provider, sites: list[SiteConfig], *,
                 min_hours: float, matchable: MatchableService | None = None) -> None:
        self.store = store
        self.matchable = matchable
        self.provider = provider
        self.sites = sites
        self.min_hours = min_hours
        self.last_plan: dict[str, object] = {}
        self.last_error = ""
        self.quarantines = ActiveQuarantines()

    async def step(self) -> bool:
        try:
            await self._round()
        except ProviderError as exc:
            # shown by GET /providers; re-raised so the loop backs off instead of hammering the schedd
            self.last_error = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: {exc}"
            raise
        self.last_error = ""
        return False

    async def _round(self) -> None:
        store = self.store
        # Parsl's order: read the batch system's view (no side effects), act on
        # held pilots, plan and act on the queue, then clean up what ended.
        await self.provider.status()
        await self.provider.handle_held()
        records = await store.queued_classes()
        classes = [QueuedClass.of(c) for c in records]
        grouped = {c.class_key: q.group for c, q in zip(records, classes) if q.group}
        if grouped:  # the submit lines of each batchsys group queued work has (one probe per class)
            found = await store.class_batchsys(list(grouped))
            self.provider.set_batchsys({grouped[key]: value for key, value in found.items()})
        pilots = [p for p in (RegisteredPilot.of(x) for x in await store.list_pilots(state="active")) if p]
        capacity = self.provider.slots if isinstance(self.provider, LocalProvider) else None
        blocked = await self.quarantines.sites(store)  # no pilots for a quarantined site
        sites = [site for site in self.sites if site.name not in blocked]
        serves = site_serves(self.matchable.provider_caps) if self.matchable else None
        result = plan(classes, sites, self.provider.jobs(), pilots, now=time.time(),
                      min_hours=self.min_hours, capacity=capacity, serves=serves)
        if result.cancel:
            await self.provider.cancel(result.cancel, "idle surplus: no queued task needs it")
        for pilot_id in result.drain:
            await store.set_pilot_drain(pilot_id, True)
        for shape, count in result.submit:
            await self.provider.submit(shape, count)
        await self.provider.housekeeping()
        self.last_plan = {"submitted": {s.name: n for s, n in result.submit}, "cancelled": len(result.cancel),
                          "drained": len(result.drain), "unserved": sum(c.queued for c in result.unserved)}
        if result.submit or result.cancel or result.drain:
            log.info("provisioning round", extra=self.last_plan)


def _bundle(settings: Settings) -> str:
    """The pilot bundle as an absolute path (HTCondor resolves relative ones against the submit's iwd)."""
    path = Path(settings.pilot_bundle).resolve()
    if settings.pilot_bootstrap == "bundle" and not path.is_file():
        raise ValueError(f"pilot_bundle {path} does not exist: build it with `make pilot-bundle`")
    return str(path)


def hidden_from_modules(settings: Settings) -> list[str]:
    """What local pilots hide from modules: the data dir and, wherever they are, the key and database."""
    data_dir = Path(settings.data_dir).resolve()
    return [str(data_dir)] + sorted({str(p.resolve()) for p in secret_paths(settings)
                                     if data_dir not in p.resolve().parents})


def build_provider(settings: Settings, tokens: TokenAuthority) -> tuple[Provider, list[SiteConfig], float]:
    """The provider, its sites and the shortest pilot lifetime it uses (hours);
    ``tokens`` mints the pilots' tokens."""
    data_dir = Path(settings.data_dir)
    if settings.provider == "local":
        slots = parse_slots(settings.local_slots, data_dir)
        lifetime = max(settings.local_pilot_hours, 1.0)
        provider: Provider = LocalProvider(
            server_url=settings.resolved_public_url(), slots=slots, directory=data_dir / "pilots",
            site=settings.local_site,
            mint_token=lambda: tokens.create_bootstrap(int(settings.pilot_start_seconds), username=PILOT_USER),
            command=settings.pilot_command.split() if settings.pilot_command else None,
            hide=hidden_from_modules(settings), run_as=settings.local_pilot_user)
        return provider, sites_from_settings(settings, settings.local_site), lifetime
    if settings.provider == "htcondor":
        sites = sites_from_settings(settings, "")
        options = CondorOptions(
            server_url=settings.resolved_public_url(),
            submit_dir=Path(settings.condor_submit_dir) if settings.condor_submit_dir else data_dir / "condor",
            bootstrap=settings.pilot_bootstrap or "container", image=settings.pilot_image,
            command=settings.pilot_command or "/usr/local/bin/frazil", bundle=_bundle(settings),
            site_requirements={s.name: s.options.get("requirements", "") for s in sites},
            site_lines={s.name: list(s.options.get("submit_lines", [])) for s in sites},
            site_os={s.name: list(s.options.get("os", [])) for s in sites}, os_images=os_images(settings.os_images))
        provider = CondorProvider(
            options=options, schedd_factory=real_schedd(settings.condor_schedd, settings.condor_collector),
            mint_token=lambda: tokens.create_bootstrap(int(settings.pilot_bootstrap_seconds), username=PILOT_USER))
        return provider, sites, 0.0
    if settings.provider == "slurm":
        return _slurm(settings, tokens, data_dir)
    raise ValueError(f"provider must be local, htcondor, slurm or none, got {settings.provider!r}")


def _slurm(settings: Settings, tokens: TokenAuthority, data_dir: Path) -> tuple[Provider, list[SiteConfig], float]:
    """The Slurm provider: defaults from the slurm_* settings, a SlurmSite per site table."""
    sites = sites_from_settings(settings, "")
    defaults = {"partition": settings.slurm_partition, "account": settings.slurm_account,
                "qos": settings.slurm_qos, "constraint": settings.slurm_constraint,
                "time_limit": settings.slurm_time_limit}
    slurm_sites = {}
    for site in sites:
        try:
            slurm_sites[site.name] = SlurmSite(**{**defaults, **site.options.get("slurm", {})})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pilot_sites.{site.name or '(default)'}: {exc}") from None
    options = SlurmOptions(
        server_url=_callback_url(settings), bootstrap=settings.pilot_bootstrap or "shared",
        submit_dir=(Path(settings.slurm_submit_dir) if settings.slurm_submit_dir else data_dir / "slurm").resolve(),
        bundle=_bundle(settings), sites=slurm_sites, json=None if settings.slurm_json else False,
        **({"command": shlex.split(settings.pilot_command)} if settings.pilot_command else {}))
    provider = SlurmProvider(options=options, mint_token=lambda: tokens.create_bootstrap(
        int(settings.pilot_bootstrap_seconds), username=PILOT_USER))
    return provider, sites, 0.0


def _callback_url(settings: Settings) -> str:
    """Where batch pilots reach the server: public_url, else this host's name when
    listening on every address (compute nodes cannot use 0.0.0.0), else host:port."""
    if not settings.public_url and settings.host in ("0.0.0.0", "::", ""):
        return f"http://{socket.getfqdn()}:{settings.port}"
    return settings.resolved_public_url()


async def release_stopped_pilots(store: Store, settings: Settings, provider_name: str, job_ids: list[str]) -> None:
    """Give back the tasks of local pilots stopped with the server.

    By the time cleanup runs, aiohttp has closed the listening socket, so the
    pilots' own eviction reports cannot arrive; without this their tasks
    would sit in processing until their leases ran out after a restart."""
    if not job_ids:
        return
    wanted = set(job_ids)
    for pilot in await store.list_pilots(state="active"):
        if pilot.provider != provider_name or pilot.provider_job_id not in wanted:
            continue
        try:
            await release_pilot_tasks(store, settings, list(pilot.tasks), pilot.pilot_id,
                                      "pilot stopped with the server")
            await store.set_pilot_state(pilot.pilot_id, "exited")
        except Exception:  # shutdown goes on; the reaper catches what is left after the next start
            log.warning("could not release a stopped pilot's tasks", extra={"pilot_id": pilot.pilot_id},
                        exc_info=True)


def capabilities(settings: Settings, provider: Provider | None, sites: list[SiteConfig]) -> list[Capability]:
    """Where the configured provider can start pilots (none: only registered pilots count)."""
    if provider is None:
        return []
    slots = provider.slots if isinstance(provider, LocalProvider) else None
    return provider_capabilities(provider.name, sites, os_images(settings.os_images), slots)


async def service(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = app[STORE]
    if settings.provider == "none":
        matchable = MatchableService(store, [], settings.provider_interval_seconds)
        app[MATCHABLE] = matchable
        matchable.start()
        try:
            yield
        finally:
            await matchable.stop()
        return
    try:
        provider, sites, min_hours = build_provider(settings, app[TOKENS])
    except ValueError as exc:
        raise SystemExit(f"frazil server: {exc}") from None
    matchable = MatchableService(store, capabilities(settings, provider, sites), settings.provider_interval_seconds)
    app[MATCHABLE] = matchable
    matchable.start()
    provisioner = Provisioner(store, provider, sites, min_hours=min_hours, matchable=matchable)
    runner = LoopRunner(store, instance_id(settings), app[METRICS],
                        [LoopSpec("provision", provisioner.step, settings.provider_interval_seconds)])
    app[PROVIDER] = provider
    app[PROVISIONER] = provisioner
    runner.start()
    log.info("provisioning started", extra={"provider": provider.name, "sites": [s.name for s in sites]})
    try:
        yield
    finally:
        await runner.stop()
        await matchable.stop()
        stopped = [job.job_id for job in provider.jobs()] if isinstance(provider, LocalProvider) else []
        await provider.close()
        await release_stopped_pilots(store, settings, provider.name, stopped)
        log.info("provisioning stopped", extra={"provider": provider.name})
