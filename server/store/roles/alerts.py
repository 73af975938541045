"""Alert subscriptions and their events (each event recorded once, then
delivered with retries by the alerts loop).

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc

from ..records import AlertEvent, AlertSubscription


class AlertsRole(abc.ABC):
    """The alerts part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def add_alert_subscription(self, subscription: AlertSubscription) -> AlertSubscription:
        """Store a subscription (``created`` set now)."""

    @abc.abstractmethod
    async def list_alert_subscriptions(self, username: str | None = None) -> list[AlertSubscription]:
        """A user's subscriptions (everyone's when None), oldest first."""

    @abc.abstractmethod
    async def delete_alert_subscription(self, subscription_id: str, username: str) -> bool:
        """Delete that user's subscription; False when there is none."""

    @abc.abstractmethod
    async def add_alert_event(self, event: AlertEvent) -> bool:
        """Record an event to deliver; False (nothing changes) when an event
        with its ``key`` was recorded before — so each is sent once."""

    @abc.abstractmethod
    async def due_alert_events(self, now: float, limit: int = 100) -> list[AlertEvent]:
        """Pending events whose ``next_try`` <= ``now``, oldest first."""

    @abc.abstractmethod
    async def update_alert_event(self, event: AlertEvent) -> None:
        """Store the event's delivery state (status, tries, next_try, error)."""

    @abc.abstractmethod
    async def list_alert_events(self, subscription_id: str, limit: int = 100) -> list[AlertEvent]:
        """A subscription's events, newest first."""
