"""Credentials: users', groups', datasets' and tasks' storage credentials.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share). Secrets
arrive and leave encrypted (``Credential.secret``); the store never decrypts.
"""
from __future__ import annotations

import abc
from typing import Sequence

from ..records.credentials import Credential


class CredentialsRole(abc.ABC):
    """The credentials part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def put_credential(self, credential: Credential) -> bool:
        """Insert, or replace the one with the same (owner_kind, owner, url); True if it was new.

        InvalidArgumentError for an unknown owner_kind or type."""

    @abc.abstractmethod
    async def get_credential(self, owner_kind: str, owner: str, url: str) -> Credential | None: ...

    @abc.abstractmethod
    async def list_credentials(self, owner_kind: str, owners: Sequence[str]) -> list[Credential]:
        """The credentials of these owners of one kind, by owner then url."""

    @abc.abstractmethod
    async def delete_credentials(self, owner_kind: str, owner: str, url: str | None = None) -> int:
        """Delete one (``url``) or all of an owner's credentials; how many went."""

    @abc.abstractmethod
    async def credentials_to_refresh(self, expiring_before: float, used_after: float,
                                     limit: int = 100) -> list[Credential]:
        """Refreshable credentials expiring before ``expiring_before`` (epoch s) and
        used after ``used_after`` (or never used), soonest expiry first."""

    @abc.abstractmethod
    async def record_refresh(self, credential: Credential, *, secret: str | None, expiration: float | None,
                             when: float, error: str = "") -> bool:
        """After a refresh of ``credential``: with ``secret``, store it and ``expiration``
        and clear the error; without, keep the secret and record ``error``. Applies only
        if the stored secret is still the one ``credential`` holds (a credential replaced
        meanwhile is left alone); returns whether it applied."""

    @abc.abstractmethod
    async def touch_credential(self, credential: Credential, when: float) -> None:
        """Set ``last_use`` (a credential handed to a task)."""
