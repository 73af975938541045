"""The refresh loop: OAuth credentials refreshed at their issuer before they expire.

As IceProd's credentials service: every ``token_check_interval_seconds``,
credentials used within ``token_refresh_window_hours`` (or never used) that
expire within ``token_expire_buffer_minutes`` are refreshed. It runs under
the store lease ``loop.credentials_refresh`` like the other loops, so one
replica refreshes at a time. A failed refresh is recorded on the credential
(shown on the owner's /profile page and the admin dashboard).
"""
from __future__ import annotations

import time
from typing import AsyncIterator

from aiohttp import web

from server.credentials.keys import CIPHER
from server.credentials.service import CredentialService
from server.keys import METRICS, SETTINGS, STORE
from server.scheduling.service import LoopRunner, LoopSpec, instance_id

BATCH = 100


async def refresh_round(service: CredentialService, *, buffer_seconds: float, window_seconds: float,
                        now: float | None = None, limit: int = BATCH) -> bool:
    """One round; True when it stopped at ``limit`` (more may be due)."""
    now = time.time() if now is None else now
    due = await service.store.credentials_to_refresh(now + buffer_seconds, now - window_seconds, limit)
    for credential in due:
        await service.refresh(credential)
    return len(due) >= limit


async def service(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]

    async def step() -> bool:
        credentials = CredentialService(app[STORE], app[CIPHER], settings.token_clients)
        return await refresh_round(credentials, buffer_seconds=settings.token_expire_buffer_minutes * 60,
                                   window_seconds=settings.token_refresh_window_hours * 3600)

    runner = LoopRunner(app[STORE], instance_id(settings), app[METRICS],
                        [LoopSpec("credentials_refresh", step, settings.token_check_interval_seconds)])
    runner.start()
    try:
        yield
    finally:
        await runner.stop()
