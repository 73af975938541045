"""Pilots as registered and as the heartbeat answers them."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import JsonDict, as_doc, new_id


@dataclass
class NewPilot:
    resources: JsonDict
    """Total resources of the slot: cpu, gpu, memory, disk, time."""
    site: str = ""
    hostname: str = ""
    os: list[str] = field(default_factory=list)
    provider: str = ""
    provider_job_id: str = ""
    version: str = ""
    pilot_id: str = field(default_factory=new_id)


@dataclass
class Pilot:
    pilot_id: str
    resources: JsonDict
    free: JsonDict
    site: str
    hostname: str
    os: list[str]
    provider: str
    provider_job_id: str
    version: str
    state: str
    """active | lost | exited."""
    drain: bool
    tasks: list[str]
    registered: str
    last_seen: float
    """Epoch seconds of the last heartbeat (lost-pilot detection)."""

    def to_doc(self) -> JsonDict:
        return as_doc(self)


@dataclass
class HeartbeatReply:
    found: bool
    drain: bool = False
