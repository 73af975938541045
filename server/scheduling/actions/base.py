"""What every ``/actions/{action}`` executor shares: the context it runs in,
its errors and the checks of payload fields.

An action has two halves, each a plain coroutine in its module:
``prepare(ctx, identity, payload) -> Prepared`` runs inside the POST request
and checks EVERYTHING it can (types, unknown keys, rights, the config) so a
bad request is a 400 and nothing is queued; ``run(ctx, message) -> dict``
runs later in the action worker and returns payload keys to record
(e.g. the new ``dataset_id``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from common import json_input
from server.auth import Identity, may
from server.errors import ActionForbidden, ActionInputError
from server.scheduling.config_pool import ConfigPool
from server.settings import Settings
from server.store import ActionMessage, Dataset, NotFoundError, Store

MAX_IDS = 100_000_000
MAX_JOBS = 100_000_000
CONTINUE_KEY = "continue_with"
"""A ``run`` result key: the payload of a follow-up message the worker queues
(same action, priority, dataset and dedupe key) once this one is complete,
at the end of the queue: long work is done in turns, not in one go."""


@dataclass
class Prepared:
    """A checked payload, ready to queue."""

    payload: dict[str, Any]
    dataset_id: str | None = None
    dedupe_key: str | None = None
    priority: int = 10


ProgressFn = Callable[[float, dict[str, Any] | None], Awaitable[None]]


@dataclass
class ActionContext:
    store: Store
    settings: Settings
    progress: ProgressFn = field(default=lambda p, u=None: _nothing())
    """Record progress (0..100) and payload keys while a long action works."""
    pool: ConfigPool | None = None
    """Where ``prepare`` checks configs (off the event loop); None: inline."""


async def _nothing() -> None:
    return None


@dataclass
class Action:
    """One action's executor, as the API and the worker see it."""

    name: str
    prepare: Callable[[ActionContext, Identity, dict[str, Any]], Awaitable[Prepared]]
    run: Callable[[ActionContext, ActionMessage], Awaitable[dict[str, Any]]]


def check_keys(payload: Any, allowed_keys: Sequence[str], required: Sequence[str]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ActionInputError(f"payload must be a JSON object, got {type(payload).__name__}")
    unknown = sorted(set(payload) - set(allowed_keys))
    if unknown:
        raise ActionInputError(json_input.clip(f"invalid keys found: {', '.join(json_input.echo(k)[1:-1] for k in unknown)}"
                                               f" (allowed: {', '.join(allowed_keys)})"))
    for key in required:
        if key not in payload or payload[key] is None:
            raise ActionInputError(f"missing key: {key}")
    return payload


def get_str(payload: dict[str, Any], key: str, default: str | None = None, *, max_len: int = 100_000) -> str | None:
    value = payload.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ActionInputError(f"key {key!r} should be of type str, got {type(value).__name__}")
    if len(value) > max_len:
        raise ActionInputError(f"key {key!r} is longer than {max_len} characters")
    return value


def get_int(payload: dict[str, Any], key: str, default: int | None = None, *, minimum: int = 0,
            maximum: int = MAX_JOBS) -> int | None:
    value = payload.get(key, default)
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActionInputError(f"key {key!r} should be of type int, got {json_input.echo(value)}")
    if not minimum <= value <= maximum:
        raise ActionInputError(f"key {key!r} must be between {minimum} and {maximum}, got {json_input.echo(value)}")
    return value


def get_ids(payload: dict[str, Any], key: str) -> list[str] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value):
        raise ActionInputError(f"key {key!r} should be a list of ids")
    if len(value) > MAX_IDS:
        raise ActionInputError(f"key {key!r} has more than {MAX_IDS} ids")
    return value


def get_json_object(payload: dict[str, Any], key: str, default: str | None = None) -> dict[str, Any] | None:
    """IceProd passes configs and extra fields as JSON STRINGS inside the payload."""
    text = get_str(payload, key, default, max_len=64 * 1024 * 1024)
    if text is None:
        return None
    try:
        value = json_input.loads(text, what=f"key {key!r}")
    except json_input.JsonInputError as exc:
        raise ActionInputError(str(exc)) from None
    if not isinstance(value, dict):
        raise ActionInputError(f"key {key!r} must hold a JSON object, got {type(value).__name__}")
    return value


async def writable_dataset(store: Store, identity: Identity, dataset_id: str) -> Dataset:
    """The dataset, when the caller may write it (404 before 403, as the routes do)."""
    dataset = await store.get_dataset(dataset_id)
    if dataset is None:
        raise NotFoundError("Dataset not found")
    if not await may(store, identity, dataset_id, "write"):
        raise ActionForbidden("authorization failed")
    return dataset


def check_problems(problems: Sequence[Any]) -> None:
    """Every config problem in one 400 message, one IceProd-format line each."""
    if problems:
        raise ActionInputError("\n".join(json_input.clip(str(p)) for p in problems), problems)
