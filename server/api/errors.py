"""Error replies in IceProd's shape: HTTP status + ``{"code": int, "error": str}``,
plus ``"reason"`` (common.protocol.Reason) on the errors a pilot acts on."""
from __future__ import annotations

import json

from aiohttp import web

from common.protocol import Reason


MAX_ERROR_CHARS = 20_000
"""A last guard: messages quote values shortened (common.json_input.echo),
but a list of problems is never let grow past this either."""


def _body(status: int, message: str, reason: Reason | None) -> str:
    if len(message) > MAX_ERROR_CHARS:
        message = f"{message[:MAX_ERROR_CHARS]}… (error text cut at {MAX_ERROR_CHARS} characters)"
    doc: dict[str, object] = {"code": status, "error": message}
    if reason is not None:
        doc["reason"] = reason.value
    return json.dumps(doc)


def error_response(status: int, message: str, *, headers: dict[str, str] | None = None,
                   reason: Reason | None = None) -> web.Response:
    return web.Response(status=status, text=_body(status, message, reason), content_type="application/json",
                        headers=headers)


class ApiError(web.HTTPException):
    """Raise from a handler to answer ``status`` with ``message`` (and optional headers and reason)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 reason: Reason | None = None):
        self.status_code = status
        super().__init__(text=_body(status, message, reason), content_type="application/json", headers=headers)
        self.message = message
        self.protocol_reason = reason  # (``reason`` is the HTTP reason phrase)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str, reason: Reason | None = None) -> ApiError:
    return ApiError(404, message, reason=reason)


def forbidden(message: str = "authorization failed") -> ApiError:
    return ApiError(403, message)
