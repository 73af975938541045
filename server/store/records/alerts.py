"""Alert subscriptions and the events sent for them (issue 16 item 2)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import JsonDict, as_doc

ALERT_EVENTS = ("complete", "errors", "failure_spike", "stalled", "quarantine")
"""``quarantine`` (a host or site was quarantined) is for admins only."""


@dataclass
class AlertSubscription:
    """A user's wish to hear about events of their datasets, by webhook and/or e-mail."""

    subscription_id: str
    username: str
    events: list[str]
    dataset_id: str = ""
    """One dataset, or "" for every dataset the user owns."""
    webhook_url: str = ""
    webhook_secret: str = ""
    """HMAC-SHA256 key of the X-Frazil-Signature header (never shown back)."""
    email: str = ""
    spike_threshold: int = 10
    """failure_spike: more failed attempts than this in the last hour."""
    stalled_hours: float = 6.0
    """stalled: no task finished for this long while work is queued."""
    created: str = ""

    def to_doc(self) -> JsonDict:
        doc = as_doc(self)
        doc["webhook_secret"] = bool(self.webhook_secret)  # whether one is set, never the key
        return doc


@dataclass
class AlertEvent:
    """One event for one subscription; ``key`` makes it unique (sent once)."""

    key: str
    subscription_id: str
    event: str
    dataset_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    """pending (to deliver, at ``next_try``), sent, failed (gave up)."""
    tries: int = 0
    next_try: float = 0.0
    error: str = ""
    created: str = ""

    def to_doc(self) -> JsonDict:
        return as_doc(self)
