"""Quarantined hosts and sites: recorded by the quarantine loop, read by the
claim path and the provider, lifted by an admin.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc

from ..records import Quarantine


class QuarantinesRole(abc.ABC):
    """The quarantine part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def add_quarantine(self, kind: str, name: str, reason: str, expires: str) -> tuple[Quarantine, bool]:
        """Quarantine host or site ``name`` until ``expires``; when it already
        has an active quarantine (not lifted, not expired) that one is
        returned unchanged with False, else the new one with True.
        InvalidArgumentError for a kind other than host/site or an empty name."""

    @abc.abstractmethod
    async def list_quarantines(self, *, active_at: str | None = None, limit: int = 100) -> list[Quarantine]:
        """Newest first, at most ``limit``; with ``active_at`` only those
        active then (not lifted, expiring later)."""

    @abc.abstractmethod
    async def lift_quarantine(self, quarantine_id: str, by: str) -> Quarantine | None:
        """Lift it now (recording who); one already lifted stays as it was.
        None when there is no such quarantine."""
