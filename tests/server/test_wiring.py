"""How create_app wires the server: one typed key per object, the signing key
read once, background services under their keys while they run, and one
error table for the API and the website."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

import server.app as app_module
from server.errors import ActionForbidden, ActionInputError, Refused, status_of
from server.keys import (
    ACTION_WORKER, CLAIM_CACHE, CLAIM_LIMITER, LOG_INDEX, LOOP_RUNNER, METRICS, PROVIDER, PROVISIONER, REPORTS,
    SCHEDULER, SETTINGS, STORE, TOKENS,
)
from server.settings import Settings
from server.store import ConflictError, InvalidArgumentError, InvalidQuery, NotFoundError, open_store
from server.web.framework import WEB
from server.web.history import HISTORY
from server.web.sessions import COOKIE
from tests.server.conftest import free_port, start_server


def test_every_long_lived_object_has_its_own_key(tmp_path) -> None:
    settings = Settings(data_dir=str(tmp_path), provider="none", loops=False)
    app = app_module.create_app(settings)
    for key in (SETTINGS, TOKENS, METRICS, CLAIM_LIMITER, CLAIM_CACHE, REPORTS, LOG_INDEX, WEB, HISTORY):
        assert key in app, key
    assert app[REPORTS].cache is app[CLAIM_CACHE]  # claims and reports share one config cache
    assert all(isinstance(key, web.AppKey) for key in app)  # no string-keyed bag left
    assert not any(key in app for key in (SCHEDULER, LOOP_RUNNER, ACTION_WORKER, PROVIDER, PROVISIONER))


async def test_signing_key_read_once_and_background_services_under_their_keys(tmp_path, monkeypatch) -> None:
    reads: list[str] = []
    real = app_module.load_or_create_key

    def counting(path):
        reads.append(str(path))
        return real(path)

    monkeypatch.setattr(app_module, "load_or_create_key", counting)
    settings = Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), port=free_port(),
                        provider="none", loop_interval_seconds=3600)
    store = await open_store(settings.db)
    runner, running = await start_server(settings, store)
    try:
        assert running.app[STORE] is store
        for key in (SCHEDULER, LOOP_RUNNER, ACTION_WORKER):
            assert key in running.app, key
        assert PROVIDER not in running.app  # provider "none": no provisioning service
        token = running.token("root", role="admin", groups=("admin",))
        async with aiohttp.ClientSession() as session:
            # the API (TokenAuthority) and the website (session codec) both use the one key
            async with session.get(f"{running.url}/datasets", headers={"Authorization": f"Bearer {token}"}) as reply:
                assert reply.status == 200
            session_cookie = running.app[WEB].codec.encode(
                running.app[WEB].codec.new_session(running.app[TOKENS].identify(token), token_expires=None))
            async with session.get(f"{running.url}/admin", cookies={COOKIE: session_cookie}) as reply:
                page = await reply.text()
                assert reply.status == 200, page
                assert "scheduler" in page and "action_worker" in page  # the running services, by name
        assert len(reads) == 1
    finally:
        await runner.cleanup()
        await store.close()


@pytest.mark.parametrize("error,status", [
    (NotFoundError("x"), 404), (ConflictError("x"), 409), (InvalidArgumentError("x"), 400), (InvalidQuery("x"), 400),
    (ActionInputError("x"), 400), (ActionForbidden("x"), 403), (Refused(507, "x"), 507), (RuntimeError("x"), None),
])
def test_one_error_table(error: Exception, status: int | None) -> None:
    assert status_of(error) == status
