"""Accounts: users, groups, dataset rights, fair-share usage."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import JsonDict, as_doc


@dataclass
class DatasetRights:
    """Per-dataset read/write rights (IceProd's ``attr_auths``)."""

    read_groups: list[str] = field(default_factory=list)
    write_groups: list[str] = field(default_factory=list)
    read_users: list[str] = field(default_factory=list)
    write_users: list[str] = field(default_factory=list)


@dataclass
class User:
    user_id: str
    username: str
    priority: float = 0.5

    def to_doc(self) -> JsonDict:
        return as_doc(self)


@dataclass
class Revocation:
    """Tokens of ``subject`` ("user:NAME" or "token:ID") issued at or before
    ``revoked_at`` (epoch seconds) are refused; while ``deleted``, every token
    of that user is (a deleted user is not re-created by their next request)."""

    subject: str
    revoked_at: float
    deleted: bool = False


@dataclass
class Group:
    name: str
    priority: float = 0.5

    def to_doc(self) -> JsonDict:
        return as_doc(self)


@dataclass
class Usage:
    """Consumed core-hours (fair share)."""

    kind: str
    """user | group."""
    name: str
    core_hours: float
