"""Shared, self-pacing snapshots of expensive page data (counts of a huge dataset).

Counting a million tasks by name and status costs the store a scan (seconds
on SQLite), and every open dataset page polls its counts every 2 s. Without
sharing, ten viewers of a big dataset would keep ten scans running. Here
each key (a dataset) has ONE snapshot:

* the first request computes it (concurrent first requests share that one
  computation);
* later requests get the snapshot at once, with its age; when it is older
  than ``max(min_age, factor x the time it took to compute)`` one background
  refresh starts. So a dataset whose counts take 40 ms is at most ~1 s
  stale, one whose counts take 4 s is refreshed every ~40 s and the scans
  use at most ~1/factor of a core, however many people watch.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger("frazil.web")
Compute = Callable[[], Awaitable[Any]]


@dataclass
class Entry:
    value: Any
    computed_at: float
    """time.monotonic() when the computation finished."""
    duration: float
    stale: bool = False
    """Marked after an action: refresh on the next view, whatever its age."""


class Snapshots:
    def __init__(self, *, min_age: float = 1.0, factor: float = 10.0, max_entries: int = 256):
        self.min_age = min_age
        self.factor = factor
        self.max_entries = max_entries
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.pending: dict[str, asyncio.Task[Any]] = {}

    def max_age(self, entry: Entry) -> float:
        return max(self.min_age, self.factor * entry.duration)

    async def get(self, key: str, compute: Compute) -> tuple[Any, float]:
        """(value, age in seconds) for ``key``."""
        entry = self.entries.get(key)
        if entry is None:
            return await asyncio.shield(self._start(key, compute)), 0.0
        self.entries.move_to_end(key)
        age = time.monotonic() - entry.computed_at
        if entry.stale or age > self.max_age(entry):
            self._start(key, compute)
        return entry.value, age

    def mark_stale(self, key: str) -> None:
        """After an action on the dataset: the next view starts a refresh."""
        entry = self.entries.get(key)
        if entry is not None:
            entry.stale = True

    def _start(self, key: str, compute: Compute) -> asyncio.Task[Any]:
        task = self.pending.get(key)
        if task is None:
            task = self.pending[key] = asyncio.ensure_future(self._compute(key, compute))
            task.add_done_callback(self._done)
        return task

    async def _compute(self, key: str, compute: Compute) -> Any:
        started = time.monotonic()
        try:
            value = await compute()
            finished = time.monotonic()
            self.entries[key] = Entry(value, finished, finished - started)
            self.entries.move_to_end(key)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
            return value
        finally:
            self.pending.pop(key, None)

    @staticmethod
    def _done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("page snapshot failed: %s", task.exception())

    async def close(self) -> None:
        """Stop refreshes before the store closes (app shutdown)."""
        for task in list(self.pending.values()):
            task.cancel()
        await asyncio.gather(*self.pending.values(), return_exceptions=True)
