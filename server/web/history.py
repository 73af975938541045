"""Small in-memory time series for the admin plots: running pilots by site and
queued tasks by resource class, sampled every 30 s (and when the dashboard is
opened), 24 h kept. Nothing here is stored: after a restart the plots start
again, which is fine for "what is happening now" views.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import AsyncIterator

from aiohttp import web

from server.keys import STORE

log = logging.getLogger("frazil.web")
SAMPLE_SECONDS = 30.0
MIN_SPACING = 0.5
KEEP = int(24 * 3600 / SAMPLE_SECONDS)


@dataclass
class Sample:
    when: float
    pilots_by_site: dict[str, int]
    queued_by_class: dict[str, int]


@dataclass
class History:
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=KEEP))
    started: float = field(default_factory=time.time)

    async def sample(self, app: web.Application, *, force: bool = False) -> None:
        now = time.time()
        if not force and self.samples and now - self.samples[-1].when < MIN_SPACING:
            return
        store = app[STORE]
        pilots = await store.list_pilots(state="active")
        queued = await store.queued_classes()
        by_class: Counter[str] = Counter()
        for entry in queued:
            by_class[entry.resource_class] += entry.queued
        self.samples.append(Sample(now, dict(Counter(p.site or "(none)" for p in pilots)), dict(by_class)))

    def series(self, attribute: str) -> dict[str, list[tuple[float, float]]]:
        out: dict[str, list[tuple[float, float]]] = {}
        names = sorted({name for s in self.samples for name in getattr(s, attribute)})
        for name in names:
            out[name] = [(s.when, float(getattr(s, attribute).get(name, 0))) for s in self.samples]
        return out


HISTORY: web.AppKey[History] = web.AppKey("web_history", History)


def history(app: web.Application) -> History:
    return app[HISTORY]


async def history_ctx(app: web.Application) -> AsyncIterator[None]:
    """Background sampler, started with the app (also when its loops are off)."""
    keeper = history(app)

    async def loop() -> None:
        while True:
            try:
                await keeper.sample(app, force=True)
            except Exception:  # a sampling hiccup must never stop the server
                log.exception("admin history sample failed")
            await asyncio.sleep(SAMPLE_SECONDS)
    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def install(app: web.Application) -> None:
    app.cleanup_ctx.append(history_ctx)
