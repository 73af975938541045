"""Error replies in IceProd's shape: HTTP status + ``{"code": int, "error": str}``."""
from __future__ import annotations

import json

from aiohttp import web


def error_response(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps({"code": status, "error": message}),
                        content_type="application/json", headers=headers)


class ApiError(web.HTTPException):
    """Raise from a handler to answer ``status`` with ``message`` (and optional headers)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        self.status_code = status
        super().__init__(text=json.dumps({"code": status, "error": message}), content_type="application/json",
                         headers=headers)
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def forbidden(message: str = "authorization failed") -> ApiError:
    return ApiError(403, message)
