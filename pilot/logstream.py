"""Live logs of one attempt, sent to the server in batches (about once a second).

The runner hands every chunk of stdout, stderr and stdlog to :meth:`TaskLogs.feed`
(never blocking, never raising: a task must not wait for the network). A
flusher sends what accumulated: the first chunk of a log creates it
(``POST /tasks/{id}/logs``), later ones append (``PATCH /logs/{log_id}``), both
fenced by the claim's ``instance_id``. While the server is unreachable the
text waits in memory (bounded); what is still unsent when the task ends goes
to the spool, ahead of the task's result.
"""
from __future__ import annotations

import asyncio
import logging

from pilot.api import ServerApi, Unreachable
from pilot.spool import Spool

log = logging.getLogger("frazil.pilot.logs")
MAX_BUFFER = 4 << 20
"""Characters kept per log while the server is away; older text is dropped with a marker
(the work dir's copy stays complete)."""


class TaskLogs:
    def __init__(self, api: ServerApi, task_id: str, instance_id: str, *, interval: float = 1.0) -> None:
        self.api, self.task_id, self.instance_id, self.interval = api, task_id, instance_id, interval
        self._buffers: dict[str, list[str]] = {}
        self._sizes: dict[str, int] = {}
        self._log_ids: dict[str, str] = {}
        self._closed: set[str] = set()
        """Logs the server refused (stale claim, size limit): nothing more is sent."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def feed(self, name: str, text: str) -> None:
        """The runner's log callback."""
        if name in self._closed or not text:
            return
        chunks = self._buffers.setdefault(name, [])
        chunks.append(text)
        size = self._sizes[name] = self._sizes.get(name, 0) + len(text)
        if size > MAX_BUFFER:
            joined = "".join(chunks)
            dropped = len(joined) - MAX_BUFFER // 2
            chunks[:] = [f"[frazil: {dropped} characters not streamed while the server was away]\n",
                         joined[dropped:]]
            self._sizes[name] = sum(len(c) for c in chunks)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Unreachable:
                continue

    async def flush(self) -> None:
        """Send every buffered log now (one request per log, concurrently); raises
        Unreachable (unsent text stays buffered)."""
        async with self._lock:
            names = [name for name, chunks in self._buffers.items() if chunks]
            results = await asyncio.gather(*(self._send(name) for name in names), return_exceptions=True)
        for outcome in results:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _send(self, name: str) -> None:
        chunks = self._buffers[name]
        count = len(chunks)  # feed() may append while we wait for the server
        text = "".join(chunks[:count])
        log_id = self._log_ids.get(name)
        if log_id is None:
            reply = await self.api.call("POST", f"/tasks/{self.task_id}/logs",
                                        {"instance_id": self.instance_id, "name": name, "data": text})
            if reply.ok and isinstance(reply.data, dict):
                self._log_ids[name] = str(reply.data.get("result"))
        else:
            reply = await self.api.call("PATCH", f"/logs/{log_id}",
                                        {"instance_id": self.instance_id, "append": text})
        del chunks[:count]
        self._sizes[name] = sum(len(c) for c in chunks)
        if not reply.ok:
            # 409: the claim is gone; 413: the stored log is full. Either way stop.
            log.info("log %s of task %s no longer streamed: %s", name, self.task_id, reply.error)
            self._closed.add(name)

    async def _stop_flusher(self) -> None:
        if self._task is None:
            return
        # Under the lock no request is in flight: cancelling then cannot lose the
        # answer to a chunk the server already stored (which would be sent twice).
        async with self._lock:
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def discard(self) -> None:
        """Stop streaming and forget what is unsent (the attempt is no longer ours)."""
        await self._stop_flusher()
        self._buffers.clear()

    async def finish(self, spool: Spool) -> None:
        """Stop streaming; what could not be sent is spooled (before the result)."""
        await self._stop_flusher()
        try:
            await self.flush()
            return
        except Unreachable:
            pass
        async with self._lock:
            for name, chunks in self._buffers.items():
                text = "".join(chunks)
                if not text or name in self._closed:
                    continue
                log_id = self._log_ids.get(name)
                if log_id is None:
                    spool.add("POST", f"/tasks/{self.task_id}/logs",
                              {"instance_id": self.instance_id, "name": name, "data": text}, f"log {name}")
                else:
                    spool.add("PATCH", f"/logs/{log_id}", {"instance_id": self.instance_id, "append": text},
                              f"log {name}")
            self._buffers.clear()
