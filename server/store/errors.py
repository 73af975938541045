"""The errors the store raises on purpose; the REST layer maps each to a status."""
from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NotFoundError(StoreError, LookupError):
    """The named dataset/job/task/... does not exist (REST: 404)."""


class ConflictError(StoreError):
    """A unique name or id is already taken (REST: 409)."""


class InvalidArgumentError(StoreError, ValueError):
    """A value the store refuses (bad status, lowering jobs_submitted, ...): 400."""


class SchemaVersionError(StoreError):
    """The database was written by a newer frazil (or is not a frazil store)."""
