"""Site configuration for providers, read from the server settings.

``pilot_sites`` in the settings file is a table per site::

    [pilot_sites.CHTC]
    max_idle = 20
    max_running = 500
    requirements = 'TARGET.GLIDEIN_Site =?= "CHTC"'
    submit_lines = ['+AccountingGroup = "icecube.prod"']

    [pilot_sites.cluster-gpu]                 # Slurm: sbatch settings per site
    partition = "gpu"
    account = "icecube"
    time_limit = 720                          # minutes
    sbatch_lines = ["--licenses=cvmfs"]

Missing limits take the ``site_*`` defaults. With no table at all there is
one site: ``local_site`` for the local provider, "" (anywhere the pool
sends the pilot) for HTCondor and Slurm.
"""
from __future__ import annotations

import re
from typing import Any

from server.provisioning.demand import SiteConfig
from server.provisioning.slurm import SITE_KEYS as SLURM_KEYS
from server.settings import Settings

LIMITS = ("max_idle", "max_running", "max_per_cycle", "ramp_up")
OPTIONS = ("requirements", "submit_lines", "os", "largest_slot", *SLURM_KEYS)
SLOT_KEYS = ("cpu", "gpu", "memory", "disk")
SITE_NAME = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")


def sites_from_settings(settings: Settings, default_site: str) -> list[SiteConfig]:
    defaults = {"max_idle": settings.site_max_idle, "max_running": settings.site_max_running,
                "max_per_cycle": settings.site_max_per_cycle, "ramp_up": settings.site_ramp_up}
    tables: dict[str, Any] = settings.pilot_sites or {default_site: {}}
    sites = []
    for name, table in tables.items():
        if not SITE_NAME.match(name):
            raise ValueError(f"pilot_sites: site name {name!r} may hold only letters, digits and _.- (64 at most)")
        if not isinstance(table, dict):
            raise ValueError(f"pilot_sites.{name}: expected a table of settings")
        unknown = sorted(set(table) - set(LIMITS) - set(OPTIONS))
        if unknown:
            raise ValueError(f"pilot_sites.{name}: unknown setting(s) {', '.join(unknown)}")
        limits = {key: table.get(key, defaults[key]) for key in LIMITS}
        lines = table.get("submit_lines", [])
        if not isinstance(lines, list) or not all(isinstance(x, str) and "\n" not in x for x in lines):
            raise ValueError(f"pilot_sites.{name}.submit_lines: expected a list of one-line strings")
        requirements = table.get("requirements", "")
        if not isinstance(requirements, str) or "\n" in requirements:
            raise ValueError(f"pilot_sites.{name}.requirements: expected a one-line ClassAd expression")
        slurm = {key: table[key] for key in SLURM_KEYS if key in table}
        sites.append(SiteConfig(name=name, **limits,
                                options={"requirements": requirements, "submit_lines": lines, "slurm": slurm,
                                         "os": _os_list(name, table.get("os", [])),
                                         "largest_slot": _slot(name, table.get("largest_slot"))}))
    return sites


def _os_list(site: str, value: Any) -> list[str]:
    """``os``: the OS_ARCH names the site's nodes run (pilots there serve them without an image)."""
    if not isinstance(value, list) or not all(isinstance(x, str) and SITE_NAME.match(x) and x for x in value):
        raise ValueError(f"pilot_sites.{site}.os: expected a list of OS_ARCH names such as \"RHEL_7_x86_64\"")
    return list(value)


def _slot(site: str, value: Any) -> dict[str, float] | None:
    """``largest_slot``: the biggest pilot the site can start ({cpu, gpu, memory, disk}; None: unknown)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(SLOT_KEYS) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value.values()):
        raise ValueError(f"pilot_sites.{site}.largest_slot: expected a table of {', '.join(SLOT_KEYS)} "
                         "numbers >= 0 (memory and disk in GB)")
    return {"cpu": 1e9, "gpu": 0, "memory": 1e12, "disk": 1e12, **value}
