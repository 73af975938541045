"""Pilots: registration, heartbeat, drain, lost-pilot detection.

Pilots as the server sees them: registration, heartbeats with free
resources, drain, and marking silent pilots lost.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc
from typing import Any, Sequence

from ..records import HeartbeatReply, NewPilot, Pilot


class PilotsRole(abc.ABC):
    """The pilots part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def register_pilot(self, pilot: NewPilot) -> str:
        """Record a pilot (state active, last_seen now); returns pilot_id."""

    @abc.abstractmethod
    async def pilot_heartbeat(self, pilot_id: str, free: dict[str, Any] | None,
                              tasks: Sequence[str]) -> HeartbeatReply:
        """Update last_seen, free resources and running task ids; the reply
        carries the drain flag. ``found`` False for an unknown pilot."""

    @abc.abstractmethod
    async def get_pilot(self, pilot_id: str) -> Pilot | None: ...

    @abc.abstractmethod
    async def list_pilots(self, *, site: str | None = None, state: str | None = None) -> list[Pilot]: ...

    @abc.abstractmethod
    async def set_pilot_drain(self, pilot_id: str, drain: bool = True) -> bool: ...

    @abc.abstractmethod
    async def set_pilot_state(self, pilot_id: str, state: str) -> bool:
        """active | lost | exited."""

    @abc.abstractmethod
    async def mark_lost_pilots(self, last_seen_before: float) -> list[str]:
        """Active pilots silent since before that epoch time -> lost; their ids."""

    @abc.abstractmethod
    async def delete_pilot(self, pilot_id: str) -> bool: ...
