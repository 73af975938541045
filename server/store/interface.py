"""The store contract: every piece of server state goes through :class:`Store`.

Handlers and background loops speak to a :class:`Store` in domain terms and
never see SQL or Mongo. Every method is a coroutine and every mutating method
is atomic (one transaction or one atomic document update): a crash leaves
either the whole effect or none of it. Both backends pass the same contract
suite (``tests/store/``); where this docstring and a backend disagree, the
backend is wrong.

Conventions:
* ids are ``uuid1().hex`` strings; timestamps in documents are IceProd time
  strings (:func:`records.nowstr`); leases and ``last_seen`` are epoch seconds.
* "guarded" status changes apply only from the statuses that
  ``common.states.previous_statuses(kind, new)`` allows (``force=True``
  bypasses the machine, as IceProd's hard reset and bulk_status routes do)
  and return whether anything changed.
* Reports carry the ``instance_id`` the claim handed out (fencing): a report
  with any other id changes nothing and says ``stale``.

``Store`` is the sum of one role interface per concern (``server/store/roles/``:
datasets and configs, jobs and tasks, claim and leases, logs and files,
pilots, accounts, actions, credentials, module sources, attempt queries, quarantines, alerts); each method's docstring there is its contract.
Argument checks both backends apply live once, in ``server/store/checks.py``.
"""
from __future__ import annotations

import abc

from .errors import ConflictError, InvalidArgumentError, NotFoundError, SchemaVersionError, StoreError
from .roles import (
    AccountsRole, ActionsRole, AttemptQueriesRole, ClaimRole, CredentialsRole, DatasetsRole, JobsRole,
    LogsFilesRole, PilotsRole, QuarantinesRole, SourcesRole, AlertsRole,
)

__all__ = [
    "Store", "StoreError", "NotFoundError", "ConflictError", "InvalidArgumentError", "SchemaVersionError",
]


class Store(DatasetsRole, JobsRole, ClaimRole, LogsFilesRole, PilotsRole, AccountsRole, ActionsRole,
            CredentialsRole, SourcesRole, AttemptQueriesRole, QuarantinesRole, AlertsRole,
            abc.ABC):
    """Abstract store. Obtain one with ``server.store.open_store(url)``."""

    backend: str = ""
    """"sqlite" or "mongodb" (for logs and benchmarks)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release connections/threads. Idempotent."""

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
