"""Action messages: the queue behind ``/actions/{action}``.

Long operations requested through ``/actions/{action}``, kept in the store
so a restarted server resumes them and any replica answers their status.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc
from typing import Any

from ..records import ActionMessage


class ActionsRole(abc.ABC):
    """The action-queue part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def add_action(self, action: str, payload: dict[str, Any], *, priority: int = 10,
                         dataset_id: str | None = None, dedupe_key: str | None = None) -> ActionMessage:
        """Queue a message (status queued, created_at now). With ``dedupe_key``:
        when a queued or processing message of the same action has that key,
        return it instead of adding another (IceProd de-duplicates
        materialization requests per dataset)."""

    @abc.abstractmethod
    async def get_action(self, message_id: str) -> ActionMessage | None: ...

    @abc.abstractmethod
    async def action_counts(self, action: str) -> dict[str, int]:
        """{status: count} for one action, every status of
        ``records.ACTION_STATUSES`` present (zeros included)."""

    @abc.abstractmethod
    async def latest_action(self, action: str, dataset_id: str) -> ActionMessage | None:
        """Newest message of that action for the dataset."""

    @abc.abstractmethod
    async def pop_action(self, worker_id: str, *, stale_after: float = 910.0) -> ActionMessage | None:
        """Atomically take the highest-priority, oldest queued message (or a
        processing one locked more than ``stale_after`` seconds ago: its worker
        died) -> processing, attempts +1, worker_id and locked_at set. Two
        workers never get the same message."""

    @abc.abstractmethod
    async def finish_action(self, message_id: str, worker_id: str, status: str, *, error_message: str = "",
                            payload_update: dict[str, Any] | None = None) -> bool:
        """processing -> ``status`` (complete | error | queued to release it),
        only if ``worker_id`` still holds it; payload keys merged. True iff applied."""

    @abc.abstractmethod
    async def update_action_progress(self, message_id: str, progress: float,
                                     payload_update: dict[str, Any] | None = None) -> bool:
        """Record progress (0..100) of a processing message."""

    @abc.abstractmethod
    async def delete_actions_before(self, created_before: str) -> int:
        """Drop finished (complete/error) messages older than that time string."""
