"""Running two-document changes atomically where the server allows it.

On a replica set or sharded cluster a change that touches two documents (a task
and its attempt, a batch of jobs and their tasks) runs inside one transaction via
``AsyncClientSession.with_transaction``, which also retries transient errors.

On a standalone server there are no transactions. Every such operation then runs
as a sequence of single-document atomic updates ordered so that the FIRST write is
the decisive one (the fenced task update, the task inserts marked ``creating``)
and carries everything needed to finish the rest; a crash between the writes
leaves a marker (``pending_attempt`` on the task, ``creating`` on new tasks) that
the next call or the repair pass at start (``repair.py``) completes idempotently.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

T = TypeVar("T")

Session = AsyncClientSession | None


async def in_transaction(
    client: AsyncMongoClient[dict[str, Any]],
    fn: Callable[[AsyncClientSession], Awaitable[T]],
) -> T:
    """Run ``fn(session)`` in one majority-committed transaction, retried on transient errors.

    ``fn`` may run more than once (with_transaction retries on write conflicts),
    so it must not have side effects outside the session's operations.
    """
    async with client.start_session() as session:
        return await session.with_transaction(
            fn,
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern("majority"),
        )
