"""Reading IceProd-style query strings and JSON bodies, with errors that name the field."""
from __future__ import annotations

import json
from typing import Any, Iterable

from aiohttp import web

from common import json_input
from server.api.errors import bad_request
from server.store import InvalidQuery, ListOptions

MAX_LIST = 100_000


def pipe_list(request: web.Request, name: str, allowed: Iterable[str] | None = None,
              kind: str = "") -> list[str] | None:
    """``status=a|b`` -> ["a", "b"]; None when absent; unknown values are 400
    (``unknown status``, as IceProd) when ``allowed`` is given."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    values = [v for v in raw.split("|") if v]
    if allowed is not None:
        allowed_set = set(allowed)
        unknown = [v for v in values if v not in allowed_set]
        if unknown:
            what = f"{kind} {name}" if kind else name
            raise bad_request(f"unknown {what} {unknown[0]!r}; expected one of {', '.join(sorted(allowed_set))}")
    return values


def int_param(request: web.Request, name: str, default: int | None = None, *, minimum: int | None = None,
              maximum: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f'query parameter "{name}" should be an integer, got {raw!r}') from None
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        raise bad_request(f'query parameter "{name}" must be between {minimum} and {maximum}, got {value}')
    return value


def bool_param(request: web.Request, name: str, default: bool | None = None) -> bool | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise bad_request(f'query parameter "{name}" should be true or false, got {raw!r}')


def list_options(request: web.Request, *, sortable: Iterable[str] = (), default_limit: int | None = None) -> ListOptions:
    """``keys=a|b``, ``limit``, ``after`` (cursor) and ``sort=f=1|g=-1``."""
    keys = pipe_list(request, "keys")
    limit = int_param(request, "limit", default_limit, minimum=1, maximum=MAX_LIST)
    sort: list[tuple[str, int]] = []
    raw_sort = request.query.get("sort")
    if raw_sort:
        allowed = set(sortable)
        for part in raw_sort.split("|"):
            name, _, direction = part.partition("=")
            if name not in allowed:
                raise bad_request(f"cannot sort by {name!r}; sortable: {', '.join(sorted(allowed)) or 'none'}")
            if direction not in {"1", "-1"}:
                raise bad_request(f"sort direction for {name!r} must be 1 or -1")
            sort.append((name, int(direction)))
    try:
        return ListOptions(keys=keys, limit=limit, after=request.query.get("after") or None, sort=tuple(sort))
    except InvalidQuery as exc:
        raise bad_request(str(exc)) from None


def page_headers(next_cursor: str | None) -> dict[str, str]:
    """Cursor pagination travels in headers so IceProd's body shapes stay exactly as they were."""
    return {"X-Next-Cursor": next_cursor} if next_cursor else {}


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    if not request.can_read_body:
        if required:
            raise bad_request("request body must be a JSON document")
        return {}
    try:
        text = await request.text()
    except UnicodeDecodeError:
        raise bad_request("request body is not UTF-8") from None
    if not text.strip():
        if required:
            raise bad_request("request body must be a JSON document")
        return {}
    try:
        document = json_input.loads(text)
    except json_input.JsonInputError as exc:
        raise bad_request(str(exc)) from None
    try:
        # JSON may carry lone surrogates ("\ud800") that no store can keep as UTF-8.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("request body contains text that is not valid Unicode (a lone surrogate escape)") from None
    except RecursionError:
        raise bad_request("request body is nested too deeply") from None
    return document


def json_reply(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(data, separators=(",", ":"), default=str).encode(),
                        content_type="application/json", headers=headers)
