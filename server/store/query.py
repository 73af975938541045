"""Backend-neutral query objects: filters, ``keys`` projections and cursor
pagination.

Handlers translate IceProd query strings (``status=a|b``, ``keys=a|b``,
``sort=f=1|g=-1``, ``limit``) into these objects; each backend translates them
into SQL or a Mongo filter. Cursors are opaque strings to callers: a backend
puts in them the sort values of the last row it returned (keyset pagination),
so walking pages never repeats or skips a row that existed when the walk
started, whatever is inserted meanwhile.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Sequence

MAX_LIMIT = 100_000
"""Largest page a caller may ask for (IceProd's bulk routes take <= 100 k ids)."""


class InvalidQuery(ValueError):
    """A filter, sort, projection or cursor a caller cannot use; the message
    names the offending part so the REST layer can answer 400 with it."""


@dataclass(frozen=True)
class ListOptions:
    keys: Sequence[str] | None = None
    """Projection: dot paths (``requirements.gpu``); None = whole documents.
    The id field of the collection is always included."""
    limit: int | None = None
    """Page size; None = everything (IceProd's unpaginated routes)."""
    after: str | None = None
    """Cursor returned as ``Page.next_cursor`` by the previous call."""
    sort: Sequence[tuple[str, int]] = ()
    """[(field, 1 | -1)]; only fields a backend declares sortable. Ties (and an
    empty sort) fall back to creation order."""

    def __post_init__(self) -> None:
        if self.limit is not None and not 0 < self.limit <= MAX_LIMIT:
            raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        for name, direction in self.sort:
            if direction not in (1, -1):
                raise InvalidQuery(f"sort direction for {name!r} must be 1 or -1, got {direction!r}")


@dataclass
class Page:
    rows: list[dict[str, Any]]
    """Documents (``to_doc()`` shape), projected to ``keys`` when given."""
    next_cursor: str | None = None
    """None when this was the last page."""


@dataclass(frozen=True)
class DatasetFilter:
    status: Sequence[str] | None = None
    groups: Sequence[str] | None = None
    users: Sequence[str] | None = None
    dataset_ids: Sequence[str] | None = None


@dataclass(frozen=True)
class JobFilter:
    dataset_id: str | None = None
    status: Sequence[str] | None = None
    job_index: int | None = None
    job_ids: Sequence[str] | None = None


@dataclass(frozen=True)
class TaskFilter:
    dataset_id: str | None = None
    status: Sequence[str] | None = None
    name: Sequence[str] | None = None
    job_id: str | None = None
    job_index: int | None = None
    task_ids: Sequence[str] | None = None
    site: str | None = None
    """Prefix of the site the task ran/runs on (IceProd's ``site`` regex prefix)."""
    gpu: bool | None = None
    """True: tasks requiring a GPU; False: tasks that do not."""


@dataclass(frozen=True)
class LogFilter:
    dataset_id: str | None = None
    task_id: str | None = None
    name: Sequence[str] | None = None
    from_time: str | None = None
    """Inclusive lower bound on ``timestamp`` (IceProd time string)."""
    to_time: str | None = None
    """Inclusive upper bound on ``timestamp``."""


TASK_SORT_FIELDS = frozenset({"priority", "status_changed", "task_index", "job_index", "name", "status"})
"""Fields ``list_tasks`` can sort on (both backends index or cheaply order them)."""


def encode_cursor(values: Sequence[Any]) -> str:
    """Opaque, URL-safe cursor holding the sort values of the last row."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> list[Any]:
    """Inverse of :func:`encode_cursor`; ``width`` = number of values expected,
    so a cursor from another listing (other sort) is refused clearly."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidQuery(f"invalid cursor {cursor[:80]!r}: not produced by this server") from None
    if not isinstance(values, list) or len(values) != width:
        raise InvalidQuery(f"invalid cursor {cursor!r}: it belongs to a listing with another sort")
    return values


def project(doc: dict[str, Any], keys: Sequence[str] | None, id_field: str) -> dict[str, Any]:
    """Mongo-style inclusion projection with dot paths, done on a full document.

    Keeping it here (not in each backend) makes both backends return exactly
    the same shape for the same ``keys``; missing paths are simply absent."""
    if keys is None:
        return doc
    out: dict[str, Any] = {}
    if id_field in doc:
        out[id_field] = doc[id_field]
    for key in keys:
        parts = key.split(".")
        value: Any = doc
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
    return out


def check_statuses(statuses: Sequence[str] | None, allowed: frozenset[str] | set[str], kind: str) -> None:
    """Raise a clear :class:`InvalidQuery` for a status the state machine does not know."""
    for status in statuses or ():
        if status not in allowed:
            raise InvalidQuery(f"unknown {kind} status {status!r}; expected one of {sorted(allowed)}")

