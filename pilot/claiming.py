"""A claim that may wait on the server for work (docs/pilot.md, step 3):
sent with ``wait``, and dropped when the pilot is told to stop meanwhile."""
from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

from common.protocol import ClaimRequest, Reason, ResourceSet
from common.resources import Resources
from pilot.api import Reply, ServerApi, Unreachable


def claim_wait(configured: float, idle_timeout: float, idle_for: float, busy: bool) -> float:
    """``configured``, but an idle pilot's claim ends by its idle timeout."""
    if busy:
        return configured
    return round(max(min(configured, idle_timeout - idle_for), 0.0), 3)


async def claim_unless_stopped(api: ServerApi, body: dict[str, Any], stopping: asyncio.Event) -> Reply | None:
    """POST the claim; None when ``stopping`` is set first (the request is
    dropped, and the server claims nothing for a pilot that hung up)."""
    call = asyncio.ensure_future(api.call("POST", "/task_actions/process", body))
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({call, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not call.done():
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, Unreachable):
            await call
        return None
    return call.result()


class ClaimCalls:
    """The claim calls of :class:`pilot.pilot.Pilot` (which holds these attributes)."""

    config: Any
    api: ServerApi
    stopping: asyncio.Event
    pilot_id: str
    advertised_os: list[str]
    slot: Any
    running: dict[str, Any]
    _hostname: str
    _last_busy: float

    def _backoff(self, base: float, attempt: int) -> float:
        """Exponential from ``base`` with +0–25% jitter, capped by max_backoff (but never
        below what the server asked for)."""
        delay = min(base * 2 ** max(attempt - 1, 0), max(self.config.max_backoff, base))
        return float(delay * random.uniform(1.0, 1.25))

    async def _claim(self, free: Resources) -> tuple[Reply | None, bool]:
        """One claim, waiting on the server for work: (the reply, None when
        SIGTERM came meanwhile; whether the server held it and nothing came,
        so the pilot asks again at once instead of backing off)."""
        wait = claim_wait(self.config.claim_wait, self.config.idle_timeout, time.monotonic() - self._last_busy,
                          bool(self.running))
        started = time.monotonic()
        reply = await claim_unless_stopped(self.api, ClaimRequest(
            pilot_id=self.pilot_id, resources=ResourceSet(**free.as_dict()), os=self.advertised_os,
            site=self.slot.site, hostname=self._hostname, wait=wait).to_json(), self.stopping)
        held = reply is not None and reply.reason is Reason.NOTHING_FITS and wait > 0 \
            and time.monotonic() - started >= min(wait / 2, 1.0)
        return reply, held
