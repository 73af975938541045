"""A claim that may wait on the server for work (docs/pilot.md, step 3):
sent with ``wait``, and dropped when the pilot is told to stop meanwhile."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

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
