"""``edit_config``: a new config version for an existing dataset (reference §4.4).

The tasks must keep their number, names and depends (jobs already exist with
them). The new config becomes a NEW version; the old one is kept. Task
requirements are re-resolved, macros included (IceProd's edit_config failed
on any ``$`` in requirements, reference §11), and pushed to the existing
tasks: a requirements block that resolves to the same value for the first
and the last job is applied to every task of that name; one that differs
per job (``$(job)`` inside) applies to the jobs materialized from now on,
and the message's payload lists those tasks under ``requirements_per_job``.
"""
from __future__ import annotations

import json
from typing import Any

from server.auth import Identity
from server.scheduling.actions.base import (
    Action, ActionContext, ActionInputError, Prepared, check_keys, get_str, writable_dataset,
)
from server.scheduling.actions.submit import check_config, check_file_outputs, parse_config
from server.scheduling.requirements import RequirementsError, TaskRequirements
from server.store import ActionMessage, NotFoundError

KEYS = ("dataset_id", "config", "description", "comment")


def _shape(config: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(str(t.get("name") or i), [str(d) for d in t.get("depends") or []])
            for i, t in enumerate(config.get("tasks") or []) if isinstance(t, dict)]


async def prepare(ctx: ActionContext, identity: Identity, payload: dict[str, Any]) -> Prepared:
    check_keys(payload, KEYS, ("dataset_id", "config"))
    dataset_id = get_str(payload, "dataset_id", max_len=64)
    assert dataset_id is not None
    get_str(payload, "description")
    get_str(payload, "comment", max_len=10_000)
    dataset = await writable_dataset(ctx.store, identity, dataset_id)
    config = (await check_config(ctx, payload, dataset.jobs_submitted, dataset=dataset.dataset,
                                 dataset_id=dataset_id, upgrade=False)).config
    check_file_outputs(config, ctx.settings)
    current = await ctx.store.get_config(dataset_id)
    if current is not None:
        old, new = _shape(current.config), _shape(config)
        if len(old) != len(new):
            raise ActionInputError(f"the config must keep its {len(old)} tasks (got {len(new)})")
        for index, ((old_name, old_deps), (new_name, new_deps)) in enumerate(zip(old, new)):
            if old_name != new_name:
                raise ActionInputError(f"task {index} must keep its name {old_name!r} (got {new_name!r})")
            if old_deps != new_deps:
                raise ActionInputError(f"task {old_name!r} must keep its depends {old_deps} (got {new_deps})")
    # The message carries the FILLED config: run() stores it as it is.
    return Prepared(payload={**payload, "config": json.dumps(config), "username": identity.username},
                    dataset_id=dataset_id)


def _requirements(config: dict[str, Any], index: int, dataset: Any) -> dict[str, Any] | None:
    """One value for every job of the dataset, or None when it differs per job."""
    resolver = TaskRequirements.build(config, index)
    values = []
    for job in sorted({0, max(dataset.jobs_submitted - 1, 0)}):
        values.append(resolver.for_job(dataset=dataset.dataset, dataset_id=dataset.dataset_id, job=job,
                                       jobs_submitted=dataset.jobs_submitted, task_id="", debug=dataset.debug))
    return values[0] if all(v == values[0] for v in values) else None


async def run(ctx: ActionContext, message: ActionMessage) -> dict[str, Any]:
    payload = message.payload
    store = ctx.store
    dataset_id = payload["dataset_id"]
    dataset = await store.get_dataset(dataset_id)
    if dataset is None:
        raise NotFoundError(f"dataset {dataset_id} not found")
    config = parse_config(payload)  # filled and checked by prepare()
    version = await store.add_config_version(dataset_id, config, payload.get("username", ""),
                                             payload.get("comment") or "edit_config")
    if payload.get("description") is not None:
        await store.update_dataset(dataset_id, description=payload["description"])
    updated, per_job = [], []
    for index, task in enumerate(config["tasks"]):
        name = str(task.get("name") or index)
        try:
            requirements = _requirements(config, index, dataset)
        except RequirementsError as exc:
            raise ActionInputError(str(exc)) from None
        if requirements is None:
            per_job.append(name)
            continue
        await store.update_requirements(dataset_id, name, requirements, replace=True)
        updated.append(name)
    return {"config_version": version, "requirements_updated": updated, "requirements_per_job": per_job}


ACTION = Action("edit_config", prepare, run)
