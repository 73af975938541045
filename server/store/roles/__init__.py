"""The role interfaces :class:`server.store.Store` is made of, one per concern.

Each role is an abstract class whose methods' docstrings are the contract;
``server/store/interface.py`` combines them into ``Store``. A caller that
needs only one concern may annotate with its role (``PilotsRole``) to say so.
"""
from __future__ import annotations

from .accounts import AccountsRole
from .actions import ActionsRole
from .attempt_queries import AttemptQueriesRole
from .claim import ClaimRole
from .credentials import CredentialsRole
from .datasets import DatasetsRole
from .jobs import JobsRole
from .logs_files import LogsFilesRole
from .pilots import PilotsRole
from .quarantines import QuarantinesRole
from .alerts import AlertsRole
from .sources import SourcesRole

__all__ = [
    "AccountsRole", "ActionsRole", "AttemptQueriesRole", "ClaimRole", "CredentialsRole", "DatasetsRole", "JobsRole", "LogsFilesRole",
    "AlertsRole", "PilotsRole", "QuarantinesRole", "SourcesRole",
]
