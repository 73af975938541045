"""Token revocation shared by every replica.

A revocation is a row in the store (``Store.revoke_tokens``): the tokens of a
user issued up to a time, or one token id, or — for a deleted user — every
token of that name. The replica that records one applies it at once; every
replica reloads the store's list every ``REFRESH_SECONDS``, so another
replica's cached token (``TokenAuthority`` remembers checked tokens up to a
minute) is refused within that time. The check itself is a dictionary lookup
on every request, so it costs the claim path nothing measurable.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import AsyncIterator

from aiohttp import web

from server.auth.tokens import TokenAuthority
from server.keys import STORE, TOKENS
from server.store import Revocation, Store

log = logging.getLogger("frazil.auth")
REFRESH_SECONDS = 1.0


async def revoke(store: Store, tokens: TokenAuthority | None, subject: str, *,
                 deleted: bool | None = None, at: float | None = None) -> Revocation:
    """Record a revocation in the store and apply it to ``tokens`` (this replica) at once."""
    revocation = Revocation(subject, time.time() if at is None else at, bool(deleted))
    await store.revoke_tokens(subject, revocation.revoked_at, deleted)
    if tokens is not None:
        if deleted is None:  # keep the store's deleted mark: reload this subject's row
            revocation = next((r for r in await store.list_revocations() if r.subject == subject), revocation)
        tokens.revoke(revocation)
    return revocation


def user_subject(username: str) -> str:
    return f"user:{username}"


def token_subject(token_id: str) -> str:
    return f"token:{token_id}"


async def revocation_sync(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: load the revocations before serving, then follow the store."""
    store, tokens = app[STORE], app[TOKENS]
    tokens.set_revocations(await store.list_revocations())

    async def follow() -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                tokens.set_revocations(await store.list_revocations())
            except Exception:  # the store is briefly unavailable: keep the last list, try again
                log.warning("could not reload token revocations", exc_info=True)

    task = asyncio.create_task(follow(), name="frazil-revocations")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
