"""``submit``: create a dataset from a config (reference §4.4).

Payload as IceProd's: ``config`` (a JSON string), ``description``,
``jobs_submitted``, ``username`` (others than the caller only for admins),
``group`` (default ``users``; one of the caller's groups unless admin),
``extra_submit_fields`` (a JSON string with more ``POST /datasets`` fields,
e.g. ``{"status": "suspended"}``); frazil's ``sources`` (``{relative path:
base64}``, the module files beside the config: server/scheduling/sources.py).
``dataset_id`` is added on completion.

The whole submission is parsed, filled with defaults and checked once, up
front, with ``common.plan.prepare_submission`` (schema, frazil's checks, and
every task planned for the first and last job), so a config that would fail
at run time is a 400 listing every problem. The filled config travels in the
message and is stored as it is; nothing later fills or re-checks it.
The dataset id is derived from the message id, so a worker that dies half way
and is retried finishes the same dataset instead of making a second one.
"""
from __future__ import annotations

import json
import math
import uuid
from typing import Any

from common import states
from common.json_input import clip, echo
from server.auth import Identity, default_rights
from server.credentials.scopes import add_token_scopes
from server.scheduling.actions.base import (
    MAX_JOBS, Action, ActionContext, ActionForbidden, ActionInputError, Prepared, check_keys, check_problems,
    get_int, get_json_object, get_str,
)
from server.scheduling.config_pool import ConfigWorkTimeout, run_config_work
from server.scheduling.config_work import CheckedConfig, check_submitted
from server.scheduling.sources import take_bundle
from server.scheduling.file_roots import static_output_problems
from server.store import ActionMessage, ConflictError, NewDataset

KEYS = ("config", "description", "jobs_submitted", "username", "group", "extra_submit_fields", "sources")
EXTRA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "priority": (int, float), "debug": bool, "jobs_immutable": bool, "always_active": bool, "status": str,
    "auth_groups_read": list,
}
ID_NAMESPACE = uuid.UUID("0d1f3c52-4b7e-4d7c-9a55-2f1e6a9b8c01")


async def check_config(ctx: ActionContext, payload: dict[str, Any], jobs: int, *, dataset: int = 1,
                       dataset_id: str = "", upgrade: bool = True) -> CheckedConfig:
    """``payload["config"]`` read and checked in the config pool (a 400 listing
    every problem, or naming the budget that ran out)."""
    text = get_str(payload, "config", max_len=64 * 1024 * 1024)
    assert text is not None  # required key, checked before
    try:
        checked = await run_config_work(ctx.pool, check_submitted, text, jobs, dataset, dataset_id,
                                        ctx.settings.config_check_seconds, upgrade)
    except ConfigWorkTimeout as exc:
        raise ActionInputError(str(exc)) from None
    if checked.error:
        raise ActionInputError(checked.error)
    check_problems(checked.problems)
    return checked


def parse_config(payload: dict[str, Any]) -> dict[str, Any]:
    config = get_json_object(payload, "config")
    assert config is not None  # required key, checked before
    config.setdefault("version", 3.2)
    return config


def check_file_outputs(config: dict[str, Any], settings: Any) -> None:
    """A static file:// output that no pilot may write is a 400 now, not a failure later."""
    problems = static_output_problems(config, settings)
    if problems:
        raise ActionInputError("; ".join(problems[:20]))


def check_extra(extra: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(extra) - set(EXTRA_FIELDS))
    if unknown:
        raise ActionInputError(clip(f"extra_submit_fields: invalid keys found: {', '.join(unknown)}"))
    for key, kinds in EXTRA_FIELDS.items():
        if key in extra:
            value = extra[key]
            if isinstance(value, bool) and kinds is not bool or not isinstance(value, kinds):
                raise ActionInputError(f"extra_submit_fields: key {key!r} has the wrong type ({echo(value)})")
    if "status" in extra and extra["status"] not in states.DATASET_STATUSES:
        raise ActionInputError(f"extra_submit_fields: unknown dataset status {echo(extra['status'])}")
    if "priority" in extra and not (math.isfinite(extra["priority"]) and extra["priority"] >= 0):
        raise ActionInputError("extra_submit_fields: priority must be a finite number >= 0")
    if "auth_groups_read" in extra and not all(isinstance(g, str) and g for g in extra["auth_groups_read"]):
        raise ActionInputError("extra_submit_fields: auth_groups_read must be a list of group names")
    return extra


async def prepare(ctx: ActionContext, identity: Identity, payload: dict[str, Any]) -> Prepared:
    check_keys(payload, KEYS, ("config", "jobs_submitted"))
    jobs = get_int(payload, "jobs_submitted", minimum=1, maximum=MAX_JOBS)
    assert jobs is not None
    username = get_str(payload, "username", identity.username, max_len=200) or identity.username
    group = get_str(payload, "group", "users", max_len=200) or "users"
    if not identity.is_admin:
        if username != identity.username:
            raise ActionForbidden(f"only admins may submit for another user ({username!r})")
        if group not in identity.groups:
            raise ActionForbidden(f"group {group!r} is not one of your groups ({', '.join(sorted(identity.groups))})")
    extra = check_extra(get_json_object(payload, "extra_submit_fields", "{}") or {})
    # Parsed, converted (3.0/3.1 -> 3.2; what it dropped is said in the message), filled and
    # planned in a worker process within the CPU budget: never on the event loop.
    checked = await check_config(ctx, payload, jobs)
    config, warnings = checked.config, checked.warnings
    check_file_outputs(config, ctx.settings)
    description = get_str(payload, "description", None)
    if description is None:
        description = str(config.get("description") or "")
    # last, once everything else passed: the bundle's blobs are stored now, the message carries their hashes
    manifest, source_warnings = await take_bundle(ctx.store, ctx.settings, config, payload.get("sources"))
    # The message carries the FILLED config: run() stores it as it is.
    rest = {k: v for k, v in payload.items() if k != "sources"}
    return Prepared(payload={**rest, "config": json.dumps(config), "username": username, "group": group,
                             "description": description, "jobs_submitted": jobs,
                             "extra_submit_fields": json.dumps(extra), "source_manifest": manifest,
                             "config_warnings": warnings + source_warnings})


async def run(ctx: ActionContext, message: ActionMessage) -> dict[str, Any]:
    payload = message.payload
    store = ctx.store
    # filled and checked by prepare(); plus the storage scopes each task needs (IceProd's
    # TokenSubmitter), stored with the config.
    config = add_token_scopes(parse_config(payload), ctx.settings.storage_namespace, payload["jobs_submitted"])
    extra = json.loads(payload.get("extra_submit_fields") or "{}")
    dataset_id = uuid.uuid5(ID_NAMESPACE, message.message_id).hex
    username, group = payload["username"], payload["group"]
    try:
        await store.create_dataset(NewDataset(
            dataset_id=dataset_id, description=payload["description"], jobs_submitted=payload["jobs_submitted"],
            tasks_per_job=len(config["tasks"]), group=group, username=username,
            priority=float(extra.get("priority", 0.5)), debug=extra.get("debug", False),
            jobs_immutable=extra.get("jobs_immutable", False), always_active=extra.get("always_active", False),
            status=extra.get("status", "processing")))
    except ConflictError:
        pass  # a previous attempt of this message created it; finish the rest
    await store.set_dataset_rights(dataset_id, default_rights(username, group, extra.get("auth_groups_read")))
    await store.ensure_user(username)
    stored = await store.get_config(dataset_id)
    version = stored.version if stored is not None else \
        await store.add_config_version(dataset_id, config, username, "submitted")
    if payload.get("source_manifest"):  # before any job exists, so every claim sees it
        await store.set_config_sources(dataset_id, version, payload["source_manifest"])
    # Ask for every job at once (IceProd's cron asked later, 100 at a time);
    # materialize() still holds back past the backlog limit.
    await store.add_action("materialization", {"dataset_id": dataset_id, "num": payload["jobs_submitted"]},
                           priority=1, dataset_id=dataset_id, dedupe_key=dataset_id)
    return {"dataset_id": dataset_id}


ACTION = Action("submit", prepare, run)
