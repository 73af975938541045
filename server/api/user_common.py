"""Pieces shared by the user-facing resource modules (datasets, jobs, tasks, config, actions).

IceProd spells the same few things in every handler: a ``{"status": ...}``
body, a list of ids capped at 100 k, and an optional body on the bulk
routes. Writing them once keeps the error texts identical across routes,
which IceProd clients match on (the guarded-status rule is
``server.scheduling.statuses.guarded_result``).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import jsonschema
from aiohttp import web

from common import states
from common.json_input import echo
from server.api.errors import bad_request
from server.api.params import json_body
from server.api.routing import caller, first_problem
from server.auth import readable_ids
from server.keys import STORE
from server.store import Page

MAX_IDS = 100_000
"""IceProd's limit on ids in one bulk request."""
MAX_COUNT = 100_000_000
"""Largest jobs_submitted/num accepted: far above any real dataset, far below integer overflow."""

HEX_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
"""An id as frazil and IceProd make them (``uuid1().hex``)."""


def id_list(kind: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64},
            "maxItems": MAX_IDS, "description": f"{kind} ids (at most {MAX_IDS})"}


def status_body(kind: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"status": <one of kind's statuses>}`` (plus optional extra properties)."""
    return {"type": "object", "required": ["status"], "additionalProperties": False,
            "properties": {"status": {"type": "string", "enum": list(states.STATUSES[kind])}, **(extra or {})}}


def check_status_name(kind: str, status: str) -> str:
    """A status from a path segment: 400 ``unknown <kind> status`` when the machine lacks it."""
    if status not in states.STATUSES[kind]:
        raise bad_request(f"unknown {kind} status {status!r}; expected one of {', '.join(states.STATUSES[kind])}")
    return status


def finite(value: Any, name: str) -> float:
    """JSON numbers can be NaN/Infinity through Python's parser; no field may hold them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(f"key {name!r}: {echo(value)} is not a finite number")
    return float(value)


async def optional_body(request: web.Request, schema: dict[str, Any]) -> dict[str, Any]:
    """The bulk routes take an optional body (IceProd: "body may have jobs or
    tasks"); when one is sent it is validated like a declared body."""
    document = await json_body(request, required=False)
    problem = first_problem(jsonschema.Draft202012Validator(schema), document)
    if problem:
        raise bad_request(problem)
    return document


async def filter_readable(request: web.Request, page: Page, id_field: str = "dataset_id") -> list[dict[str, Any]]:
    identity = caller(request)
    ids = [row[id_field] for row in page.rows]
    keep = await readable_ids(request.app[STORE], identity, ids)
    return [row for row in page.rows if row[id_field] in keep]


def keyed(rows: Iterable[dict[str, Any]], id_field: str) -> dict[str, dict[str, Any]]:
    """IceProd's collection shape: ``{id: document}``."""
    return {row[id_field]: row for row in rows}
