"""The action worker: runs queued ``/actions/*`` messages (IceProd's services process).

Messages live in the store, so any replica can take them: ``pop_action``
hands each to exactly one worker (queued → processing), the executor runs,
and ``finish_action`` records complete (with the payload keys it returned)
or error (with a message). A message whose worker died is taken over once
its lock is older than ``stale_after`` (IceProd: SERVICE_TIMEOUT + 10 s); a
run cut by ``ACTION_TIMEOUT`` is released back to the queue, as IceProd's
``TimeoutException`` path intended.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from typing import Any, AsyncIterator

from aiohttp import web

from server.keys import ACTION_WORKER, SETTINGS, STORE
from server.auth import Identity
from server.scheduling.actions import ACTIONS, ActionContext
from server.scheduling.actions.base import CONTINUE_KEY
from server.scheduling.config_pool import ConfigPool
from server.settings import Settings
from server.store import ActionMessage, Store, StoreError

log = logging.getLogger("frazil.actions")

ACTION_TIMEOUT = 900.0
STALE_AFTER = ACTION_TIMEOUT + 10
IDLE_SLEEP = 0.5
MAX_ERROR_TEXT = 10_000


class ActionWorker:
    """Pops and runs action messages until stopped."""

    def __init__(self, store: Store, settings: Settings, worker_id: str | None = None):
        self.store = store
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.wakeup = asyncio.Event()

    def wake(self) -> None:
        """Called after a POST /actions/... so the message runs without waiting for the next poll."""
        self.wakeup.set()

    async def run_one(self) -> ActionMessage | None:
        """Take one message and run it to the end; None when the queue is empty."""
        message = await self.store.pop_action(self.worker_id, stale_after=STALE_AFTER)
        if message is None:
            return None
        action = ACTIONS.get(message.action)
        if action is None:
            await self.store.finish_action(message.message_id, self.worker_id, "error",
                                           error_message=f"unknown action {message.action!r}")
            return message

        async def progress(value: float, update: dict[str, Any] | None = None) -> None:
            await self.store.update_action_progress(message.message_id, value,
                                                    {"progress": value, **(update or {})})

        ctx = ActionContext(self.store, self.settings, progress)
        try:
            result = await asyncio.wait_for(action.run(ctx, message), ACTION_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("action %s %s timed out; released to the queue", message.action, message.message_id)
            await self.store.finish_action(message.message_id, self.worker_id, "queued")
        except asyncio.CancelledError:
            # Shutting down: hand the message back so another worker runs it at once.
            await asyncio.shield(self.store.finish_action(message.message_id, self.worker_id, "queued"))
            raise
        except Exception as exc:  # any failure is the message's error, never the worker's death
            expected = isinstance(exc, (ValueError, StoreError))  # bad input/config: no traceback needed
            log.warning("action %s %s failed: %s", message.action, message.message_id, exc, exc_info=not expected)
            text = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            await self.store.finish_action(message.message_id, self.worker_id, "error",
                                           error_message=text[:MAX_ERROR_TEXT])
        else:
            follow_up = result.pop(CONTINUE_KEY, None) if isinstance(result, dict) else None
            await self.store.finish_action(message.message_id, self.worker_id, "complete", payload_update=result)
            if follow_up is not None:  # the rest, behind every message queued meanwhile
                await self.store.add_action(message.action, follow_up, priority=message.priority,
                                            dataset_id=message.dataset_id, dedupe_key=message.dedupe_key)
        return message

    async def run_until_empty(self) -> int:
        """Run messages until none is queued (tests and the CLI); returns how many ran."""
        count = 0
        while await self.run_one() is not None:
            count += 1
        return count

    async def loop(self) -> None:
        while True:
            try:
                ran = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is briefly unavailable: back off, keep the loop alive
                log.exception("action worker round failed")
                ran = None
            if ran is None:
                self.wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), IDLE_SLEEP * 4)


async def queue_action(store: Store, settings: Settings, worker: ActionWorker | None, identity: Identity,
                       name: str, payload: Any, pool: ConfigPool | None = None) -> ActionMessage:
    """Check a request with the action's own ``prepare`` (everything it can:
    types, rights, the config) and queue it; a running worker is woken at
    once. The API's ``POST /actions/...`` and the website's forms both come here; ``pool``: where
    configs are checked (off the event loop)."""
    prepared = await ACTIONS[name].prepare(ActionContext(store, settings, pool=pool), identity, payload)
    # who asked: GET /actions/{action}/{id} shows the message to them (and to the dataset's readers)
    payload = {**prepared.payload, "requested_by": identity.username}
    message = await store.add_action(name, payload, priority=prepared.priority,
                                     dataset_id=prepared.dataset_id, dedupe_key=prepared.dedupe_key)
    if worker is not None:
        worker.wake()
    return message


async def service(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx generator: one worker per server process."""
    worker = ActionWorker(app[STORE], app[SETTINGS])
    app[ACTION_WORKER] = worker
    task = asyncio.create_task(worker.loop(), name="frazil-action-worker")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
