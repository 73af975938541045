"""The one table from domain errors to HTTP statuses, for the API and the website.

Services (scheduling, store, scratch, actions) raise these errors and know
nothing of HTTP; the API's error middleware answers them as
``{"code", "error"}`` JSON and the website as an error page, both with the
status found here, so the two can never disagree about what an error means.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from common.protocol import Reason
from server.store import ConflictError, InvalidArgumentError, InvalidQuery, NotFoundError


class ActionInputError(ValueError):
    """An action's payload is wrong; the message names the field (400).
    ``problems``: the config problems behind it, when it is about the config
    (the website shows each beside its line)."""

    def __init__(self, message: str, problems: Sequence[Any] = ()):
        super().__init__(message)
        self.problems = list(problems)


class ActionForbidden(PermissionError):
    """The caller may not do this (403)."""


class Refused(Exception):
    """A service declines a request for a reason the caller can act on:
    ``status`` is the HTTP status it is answered with (404 nothing to claim,
    429 too fast, 507 storage full, ...), ``retry_after`` when to come back,
    ``reason`` what a pilot acts on (common.protocol.Reason; pilots never read
    the message)."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None,
                 reason: Reason | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.reason = reason

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


STATUS_OF: tuple[tuple[type[BaseException], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (ActionForbidden, 403),
    (ActionInputError, 400),
    (InvalidArgumentError, 400),
    (InvalidQuery, 400),
)
"""Most specific first; ``Refused`` carries its own status."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a domain error; None for anything else (a bug: 500)."""
    if isinstance(exc, Refused):
        return exc.status
    return next((status for kind, status in STATUS_OF if isinstance(exc, kind)), None)


def headers_of(exc: BaseException) -> dict[str, str]:
    return exc.headers() if isinstance(exc, Refused) else {}


def reason_of(exc: BaseException) -> Reason | None:
    return exc.reason if isinstance(exc, Refused) else None
