"""This machine's OS as CVMFS names it (``OS_ARCH``: ``RHEL_7_x86_64``), from ``/etc/os-release``.

Shared by pilots (what they advertise in the claim) and the server (what the
local provider's pilots will advertise, for the unmatchable check)."""
from __future__ import annotations

import platform
from pathlib import Path

RHEL_FAMILY = frozenset({"rhel", "centos", "rocky", "almalinux", "ol", "scientific", "fedora"})


def _os_release_fields(text: str) -> dict[str, str]:
    """``KEY=value`` lines of os-release (keys lower-cased, quotes removed)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep or not name.strip() or name.strip().startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[name.strip().lower()] = value
    return fields


def os_string(os_release: str | None = None, machine: str | None = None) -> str:
    """The tutorial's OS name: ``RHEL_7_x86_64``, ``DEBIAN_12_x86_64``, ``UBUNTU_22_x86_64``."""
    if os_release is None:
        try:
            os_release = Path("/etc/os-release").read_text(errors="replace")
        except OSError:
            os_release = ""
    fields = _os_release_fields(os_release)
    ident = fields.get("id", "").lower()
    like = fields.get("id_like", "").lower().split()
    major = fields.get("version_id", "").split(".")[0] or "0"
    arch = machine or platform.machine() or "unknown"
    if ident in RHEL_FAMILY or "rhel" in like:
        name = "RHEL"
    elif ident:
        name = ident.upper()
    else:
        name = platform.system().upper() or "UNKNOWN"
    return f"{name}_{major}_{arch}"
