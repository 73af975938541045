"""Quarantined hosts and sites (issue 16 item 3)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import JsonDict, as_doc

QUARANTINE_KINDS = ("host", "site")


@dataclass
class Quarantine:
    """A host or site that gets no work until ``expires`` or until lifted."""

    quarantine_id: str
    kind: str
    """host | site"""
    name: str
    reason: str
    """Why, in words, with the numbers that decided it."""
    created: str
    expires: str
    """IceProd time strings, like every timestamp in documents."""
    lifted: str = ""
    lifted_by: str = ""

    def active(self, now: str) -> bool:
        return not self.lifted and self.expires > now

    def to_doc(self) -> JsonDict:
        return as_doc(self)
