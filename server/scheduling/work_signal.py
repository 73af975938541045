"""Waking claims that wait for work (DESIGN.md §3.3; issue 12 item 5).

A pilot with nothing to do sends its claim with ``wait``: the server holds
the request up to that many seconds (capped by ``claim_wait_max_seconds``)
and tries the store's claim again only when tasks were queued, instead of
the pilot polling with back-off. One :class:`WorkSignal` per server process:
its queue loop and anything else that queues tasks call :meth:`notify`;
:func:`watch_queue` covers tasks queued by another replica's loops (one cheap
read of the per-class queued counts a second, and only while claims wait).
No store transaction is open while a claim waits.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from aiohttp import web

from server.keys import STORE, WORK_SIGNAL
from server.store import Store

log = logging.getLogger("frazil.server.scheduling")

WATCH_SECONDS = 1.0
"""How often a replica looks for tasks queued elsewhere while claims wait."""


class WorkSignal:
    """An event per generation: :meth:`notify` wakes every claim waiting now
    (each tries the store once more); later waiters wait for the next one."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.waiting = 0
        self.notified = 0

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        self.notified += 1
        event.set()

    async def wait(self, timeout: float) -> bool:
        """True when notified within ``timeout`` seconds."""
        event = self._event
        self.waiting += 1
        try:
            await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.0))
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self.waiting -= 1


async def queued_signature(store: Store) -> dict[str, int]:
    return {c.resource_class + "|" + c.site + "|" + ",".join(c.os): c.queued for c in await store.queued_classes()}


async def watch_queue(store: Store, signal: WorkSignal, interval: float = WATCH_SECONDS) -> None:
    """Notify when some class's queued count grew since the last look (tasks
    queued by another replica, or by a route): a class that stays queued but
    fits no waiting pilot does not wake them again and again."""
    last: dict[str, int] = {}
    while True:
        await asyncio.sleep(interval)
        if not signal.waiting:
            last = {}
            continue
        try:
            now = await queued_signature(store)
        except Exception:  # noqa: BLE001 - a store hiccup must not end the watcher
            log.warning("claim wake-up watcher: cannot read the queue", exc_info=True)
            continue
        if any(count > last.get(key, 0) for key, count in now.items()):
            signal.notify()
        last = now


async def work_signal_service(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the watcher runs beside every server process (loops or not)."""
    watcher = asyncio.create_task(watch_queue(app[STORE], app[WORK_SIGNAL]))
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
