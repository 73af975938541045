"""Reading attempts across tasks: by end time (accounting), a dataset's newest
(forecast, right-sizing) and the last attempt of given tasks (retry by filter).

Both backends index attempts by ``end`` and by ``(dataset_id, end)``, so each
call reads only the rows it returns (or counts from the index).
"""
from __future__ import annotations

import abc
from typing import Sequence

from ..records import Attempt

__all__ = ["AttemptQueriesRole"]


class AttemptQueriesRole(abc.ABC):
    """Attempts read for production statistics."""

    @abc.abstractmethod
    async def attempts_ended(self, since: str, until: str, *, after: str | None = None,
                             limit: int = 5000) -> tuple[list[Attempt], str | None]:
        """Finished attempts with ``since <= end < until`` (IceProd time
        strings), oldest end first, ``limit`` at most; the second value is the
        cursor for the next page (None after the last)."""

    @abc.abstractmethod
    async def dataset_attempts(self, dataset_id: str, *, since: str | None = None, until: str | None = None,
                               after: str | None = None, limit: int = 2000) -> tuple[list[Attempt], str | None]:
        """The dataset's finished attempts with ``since <= end < until`` (each
        bound optional), oldest end first, ``limit`` at most, and the cursor
        of the next page (None after the last)."""

    @abc.abstractmethod
    async def recent_attempts(self, dataset_id: str, *, status: str | None = None,
                              limit: int = 1000) -> list[Attempt]:
        """The dataset's finished attempts (of ``status`` when given), newest
        end first, ``limit`` at most."""

    @abc.abstractmethod
    async def count_attempts_ended(self, dataset_id: str, since: str, *, status: str | None = None) -> int:
        """How many of the dataset's attempts ended at or after ``since``."""

    @abc.abstractmethod
    async def last_attempts(self, task_ids: Sequence[str]) -> dict[str, Attempt]:
        """{task_id: its newest attempt} for the tasks that have one."""
