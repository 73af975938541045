"""Live log streaming that can never slow down or break a task.

Module output is always written to its file first; the optional callback
(the pilot sends chunks to the server) gets the same text from a queue
drained by its own asyncio task. When the callback falls behind by more than
``max_pending`` characters, chunks are dropped and a marker says so — the
stored file stays complete. A callback that raises is disabled, not fatal.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

LogCallback = Callable[[str, str], Awaitable[None]]
"""``await callback(log_name, text)`` with log_name stdout | stderr | stdlog."""


class Streamer:
    def __init__(self, callback: LogCallback | None, *, max_pending: int = 1 << 20) -> None:
        self._callback = callback
        self._max_pending = max_pending
        self._queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._pending = 0
        self._dropped: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None
        """The callback's exception, once it failed (streaming is then off)."""

    def start(self) -> None:
        if self._callback is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def feed(self, name: str, text: str) -> None:
        if self._task is None or self.error is not None or not text:
            return
        if self._pending + len(text) > self._max_pending:
            self._dropped[name] = self._dropped.get(name, 0) + len(text)
            return
        if self._dropped.get(name):
            lost = self._dropped.pop(name)
            text = f"[frazil: {lost} characters not streamed; the stored {name} has them]\n" + text
        self._pending += len(text)
        self._queue.put_nowait((name, text))

    async def _drain(self) -> None:
        assert self._callback is not None
        while True:
            item = await self._queue.get()
            if item is None:
                return
            name, text = item
            self._pending -= len(text)
            if self.error is not None:
                continue
            try:
                await self._callback(name, text)
            except Exception as exc:  # a broken stream must not break the task
                self.error = f"{type(exc).__name__}: {exc}"

    async def close(self) -> None:
        """Deliver what is queued, then stop."""
        if self._task is None:
            return
        for name, lost in self._dropped.items():
            self._queue.put_nowait(
                (name, f"[frazil: {lost} characters not streamed; the stored {name} has them]\n"))
        self._dropped.clear()
        self._queue.put_nowait(None)
        await self._task
        self._task = None
