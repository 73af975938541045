"""The engine behind ``dataset_status``, ``job_status`` and ``task_status``.

Payload (IceProd's ``Fields``): ``dataset_id``, ``action`` ∈ hard_reset |
reset | suspend, optional ``initial_status`` (only tasks now in that
status), ``job_ids`` or ``task_ids`` (at most one of the three selectors),
``progress`` (0..100, written while working).

Work is done in chunks of 5000 ids with progress recorded after each, and
job and dataset status are rolled up at the end (IceProd left that to a
cron). A reset or hard reset puts the dataset back to processing when the
state machine allows it (a hard reset of the dataset itself always does).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import states
from server.auth import Identity
from server.scheduling.actions.base import (
    Action, ActionContext, ActionInputError, Prepared, check_keys, get_ids, get_str, writable_dataset,
)
from server.scheduling.rollup import roll_up
from server.store import ActionMessage, ListOptions, Store, TaskFilter

KEYS = ("dataset_id", "action", "initial_status", "job_ids", "task_ids", "progress")
ACTIONS = ("hard_reset", "reset", "suspend")
CHUNK = 5000
PAGE = 50_000


@dataclass(frozen=True)
class Scope:
    """What an action touches besides tasks."""

    jobs: bool
    """Also move the jobs (job and dataset actions)."""
    dataset: bool
    """Also move the dataset itself (dataset action)."""


async def prepare(ctx: ActionContext, identity: Identity, payload: dict[str, Any]) -> Prepared:
    check_keys(payload, KEYS, ("dataset_id", "action"))
    dataset_id = get_str(payload, "dataset_id", max_len=64)
    assert dataset_id is not None
    action = get_str(payload, "action", max_len=32)
    if action not in ACTIONS:
        raise ActionInputError(f"invalid action {action!r}; expected one of {', '.join(ACTIONS)}")
    initial = get_str(payload, "initial_status", None, max_len=32)
    if initial is not None and initial not in states.TASK_STATUSES:
        raise ActionInputError(f"invalid initial_status {initial!r}; expected one of {', '.join(states.TASK_STATUSES)}")
    selectors = [k for k in ("initial_status", "job_ids", "task_ids") if payload.get(k) is not None]
    if len(selectors) > 1:
        raise ActionInputError(f"cannot define both {selectors[0]} and {selectors[1]}")
    get_ids(payload, "job_ids")
    get_ids(payload, "task_ids")
    await writable_dataset(ctx.store, identity, dataset_id)
    return Prepared(payload={**payload, "progress": 0}, dataset_id=dataset_id)


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


async def _task_ids(store: Store, dataset_id: str, status: str) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = await store.list_tasks(TaskFilter(dataset_id=dataset_id, status=[status]),
                                      ListOptions(keys=("task_id",), limit=PAGE, after=after))
        ids.extend(row["task_id"] for row in page.rows)
        if not page.next_cursor:
            return ids
        after = page.next_cursor


async def _job_ids(store: Store, dataset_id: str) -> list[str]:
    summary = await store.job_status_summary(dataset_id)
    return [job for jobs in summary.values() for job in jobs]


async def _move_tasks(store: Store, dataset_id: str, action: str, *, task_ids: list[str] | None = None,
                      job_ids: list[str] | None = None) -> int:
    if action == "suspend":
        return await store.bulk_task_status("suspended", dataset_id=dataset_id, task_ids=task_ids, job_ids=job_ids)
    hard = action == "hard_reset"
    return await store.bulk_task_status(states.RESET_TARGET, dataset_id=dataset_id, task_ids=task_ids,
                                        job_ids=job_ids, force=hard, reset_failures=hard)


async def _move_jobs(store: Store, dataset_id: str, action: str, job_ids: list[str]) -> int:
    if action == "suspend":
        return await store.bulk_job_status(dataset_id, "suspended", job_ids)
    return await store.bulk_job_status(dataset_id, "processing", job_ids, force=action == "hard_reset")


async def _move_dataset(store: Store, dataset_id: str, action: str, scope: Scope) -> None:
    if action == "suspend":
        if scope.dataset:
            await store.set_dataset_status(dataset_id, "suspended")
        return
    await store.set_dataset_status(dataset_id, "processing", force=scope.dataset and action == "hard_reset")


async def run(ctx: ActionContext, message: ActionMessage, scope: Scope) -> dict[str, Any]:
    store = ctx.store
    payload = message.payload
    dataset_id, action = payload["dataset_id"], payload["action"]
    job_ids: list[str] | None = payload.get("job_ids")
    task_ids: list[str] | None = payload.get("task_ids")
    if payload.get("initial_status"):
        task_ids = await _task_ids(store, dataset_id, payload["initial_status"])
    elif task_ids is None and job_ids is None:
        job_ids = await _job_ids(store, dataset_id)
    # The dataset first: suspending it stops new work before its tasks are
    # touched, and a reset dataset is processing when its tasks come back.
    await _move_dataset(store, dataset_id, action, scope)
    chunks = [("jobs", c) for c in _chunks(job_ids or [])] + [("tasks", c) for c in _chunks(task_ids or [])]
    moved = 0
    touched_jobs: set[str] = set()
    for done, (kind, chunk) in enumerate(chunks, start=1):
        if kind == "jobs":
            moved += await _move_tasks(store, dataset_id, action, job_ids=chunk)
            if scope.jobs:
                await _move_jobs(store, dataset_id, action, chunk)
            touched_jobs.update(chunk)
        else:
            moved += await _move_tasks(store, dataset_id, action, task_ids=chunk)
            page = await store.list_tasks(TaskFilter(dataset_id=dataset_id, task_ids=chunk),
                                          ListOptions(keys=("job_id",)))
            touched_jobs.update(row["job_id"] for row in page.rows)
        await ctx.progress(round(100 * done / (len(chunks) + 1), 1), None)
    await roll_up(store, dataset_id, sorted(touched_jobs), reopen=action == "hard_reset")
    return {"progress": 100, "tasks_changed": moved}


def make_action(name: str, scope: Scope) -> Action:
    async def run_scoped(ctx: ActionContext, message: ActionMessage) -> dict[str, Any]:
        return await run(ctx, message, scope)
    return Action(name, prepare, run_scoped)
