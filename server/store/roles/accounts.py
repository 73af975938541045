"""Accounts: users, groups, dataset rights and fair-share usage.

Who may do what and how much they used: users and groups with their
priorities, per-dataset rights, consumed core-hours.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc
from typing import Sequence

from ..records import DatasetRights, Group, Revocation, Usage, User


class AccountsRole(abc.ABC):
    """The accounts part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def create_user(self, username: str, priority: float = 0.5) -> User:
        """ConflictError if the username exists."""

    @abc.abstractmethod
    async def ensure_user(self, username: str) -> User:
        """The user, created with the default priority when missing (idempotent)."""

    @abc.abstractmethod
    async def get_user(self, username: str) -> User | None: ...

    @abc.abstractmethod
    async def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    async def set_user_priority(self, username: str, priority: float) -> bool:
        """InvalidArgumentError unless 0 <= priority <= 1; False if missing."""

    @abc.abstractmethod
    async def delete_user(self, username: str) -> bool: ...

    @abc.abstractmethod
    async def revoke_tokens(self, subject: str, revoked_at: float, deleted: bool | None = None) -> None:
        """Record (or move forward) a revocation of ``subject``'s tokens; ``deleted``
        None keeps the deleted mark as it is. Kept in the store so every
        replica refuses the tokens."""

    @abc.abstractmethod
    async def list_revocations(self) -> list[Revocation]:
        """Every revocation (one per revoked user or token id)."""

    @abc.abstractmethod
    async def create_group(self, name: str, priority: float = 0.5) -> Group:
        """ConflictError if it exists."""

    @abc.abstractmethod
    async def list_groups(self) -> list[Group]: ...

    @abc.abstractmethod
    async def set_group_priority(self, name: str, priority: float) -> bool: ...

    @abc.abstractmethod
    async def delete_group(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def set_dataset_rights(self, dataset_id: str, rights: DatasetRights) -> None:
        """Replace the rights of a dataset."""

    @abc.abstractmethod
    async def rights_for(self, dataset_ids: Sequence[str]) -> dict[str, DatasetRights]:
        """Rights of many datasets in one query (a page of a listing); datasets
        without rights are absent."""

    @abc.abstractmethod
    async def add_usage(self, username: str, group: str, core_hours: float) -> None:
        """Add consumed core-hours to the user's and the group's totals."""

    @abc.abstractmethod
    async def list_usage(self) -> list[Usage]: ...
