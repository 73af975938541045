"""``materialization``: create the next jobs of a dataset (reference §4.4, §6.2).

Payload: ``dataset_id`` (required), ``num`` (default 1000), ``set_status``
(status of the new tasks, default ``idle``). Requests are de-duplicated per
dataset while one is queued or processing, and run at priority 1 (after the
user-facing actions), one batch of ``materialize_batch`` jobs per run, the
rest re-queued behind the others. Unlike IceProd's service path, an
explicit request still respects ``truncated`` and the backlog limits, which
are enforced while the jobs are created (server/scheduling/backlog.py,
reference §11).
"""
from __future__ import annotations

from typing import Any

from server.auth import Identity
from server.scheduling.actions.base import (
    CONTINUE_KEY, MAX_JOBS, Action, ActionContext, ActionInputError, Prepared, check_keys, get_int, get_str, writable_dataset,
)
from server.scheduling.materialize import materialize
from server.store import ActionMessage

KEYS = ("dataset_id", "num", "set_status")
TASK_START_STATUSES = ("idle", "waiting", "suspended")
PRIORITY = 1


async def prepare(ctx: ActionContext, identity: Identity, payload: dict[str, Any]) -> Prepared:
    check_keys(payload, KEYS, ("dataset_id",))
    dataset_id = get_str(payload, "dataset_id", max_len=64)
    assert dataset_id is not None
    num = get_int(payload, "num", 1000, minimum=1, maximum=MAX_JOBS)
    status = get_str(payload, "set_status", "idle", max_len=32)
    if status not in TASK_START_STATUSES:
        raise ActionInputError(f"key 'set_status' must be one of {', '.join(TASK_START_STATUSES)}, got {status!r}")
    await writable_dataset(ctx.store, identity, dataset_id)
    return Prepared(payload={"dataset_id": dataset_id, "num": num, "set_status": status}, dataset_id=dataset_id,
                    dedupe_key=dataset_id, priority=PRIORITY)


async def run(ctx: ActionContext, message: ActionMessage) -> dict[str, Any]:
    """One batch (``materialize_batch`` jobs) per run: when more were asked
    for and the batch was full, the rest goes back to the END of the queue
    as a new message (``CONTINUE_KEY``, see action_worker), so one large
    request never holds the single action worker longer than one batch while
    other users' requests wait."""
    payload = message.payload
    asked = int(payload.get("num", 1000))
    now = min(asked, max(ctx.settings.materialize_batch, 1))
    created = await materialize(ctx.store, ctx.settings, payload["dataset_id"], now,
                                task_status=payload.get("set_status", "idle"), requested=True)
    result: dict[str, Any] = {"jobs_created": created}
    if created >= now and asked > now:
        result[CONTINUE_KEY] = {**payload, "num": asked - created}
    return result


ACTION = Action("materialization", prepare, run)
