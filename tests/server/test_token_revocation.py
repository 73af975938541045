"""Revoked tokens fail at once (401): ``DELETE /users/{user}``, ``POST
/users/{user}/revoke_tokens`` and ``frazil token revoke`` — also on a second
replica sharing the store, whose token cache still remembers the token."""
from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import sys
import time

import aiohttp
import pytest

from server.cli.token import token_id_of
from server.store import open_store
from server.web.sessions import COOKIE
from tests.server.conftest import free_port, start_server


async def status_of(url: str, token: str, path: str = "/datasets") -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(url + path, headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            return response.status


async def call(url: str, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url + path, json=body,
                                   headers={"Authorization": f"Bearer {token}"}) as response:
            return response.status, await response.json()


async def test_delete_user_refuses_their_tokens_at_once(server):
    admin = server.token("root", role="admin", groups=("admin",))
    bob = server.token("bob")
    assert await status_of(server.url, bob) == 200  # now in the token cache
    assert (await call(server.url, admin, "PUT", "/users/bob"))[0] == 201
    status, reply = await call(server.url, admin, "DELETE", "/users/bob")
    assert status == 200 and reply == {"deleted": True, "revoked": True}
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/datasets", headers={"Authorization": f"Bearer {bob}"}) as response:
            assert response.status == 401
            assert "bob" in (await response.json())["error"] and "deleted" in (await response.json())["error"]
    # a fresh token of the deleted name fails too, and nothing re-creates the user
    fresh = server.token("bob")
    assert await status_of(server.url, fresh) == 401
    assert (await call(server.url, fresh, "POST", "/actions/submit", {"config": "{}", "jobs_submitted": 1}))[0] == 401
    assert await server.store.get_user("bob") is None
    # an admin re-creates it: new tokens work, those from before the deletion do not
    assert (await call(server.url, admin, "PUT", "/users/bob"))[0] == 201
    await asyncio.sleep(0.01)
    assert await status_of(server.url, server.token("bob")) == 200
    assert await status_of(server.url, bob) == 401


async def test_revoke_tokens_keeps_new_ones_and_revokes_one_token_by_id(server):
    admin = server.token("root", role="admin", groups=("admin",))
    old = server.token("carol")
    assert await status_of(server.url, old) == 200
    status, reply = await call(server.url, admin, "POST", "/users/carol/revoke_tokens", {})
    assert status == 200 and reply["subject"] == "user:carol"
    assert await status_of(server.url, old) == 401
    await asyncio.sleep(0.01)
    one, other = server.token("carol"), server.token("carol")
    assert await status_of(server.url, one) == 200 and await status_of(server.url, other) == 200
    status, reply = await call(server.url, admin, "POST", "/users/carol/revoke_tokens", {"token_id": token_id_of(one)})
    assert status == 200
    assert await status_of(server.url, one) == 401
    assert await status_of(server.url, other) == 200


async def test_revocation_reaches_a_second_replica_past_its_cache(server, server_settings, tmp_path):
    """Replica B has the token in its cache; replica A records the revocation
    in the shared store; B refuses the token within its reload interval."""
    from server.auth.revocation import REFRESH_SECONDS
    settings_b = server_settings.__class__(**{**server_settings.__dict__, "port": free_port()})
    store_b = await open_store(settings_b.db)
    runner_b, replica_b = await start_server(settings_b, store_b)
    try:
        token = server.token("dave")
        assert await status_of(replica_b.url, token) == 200  # cached in B for up to 60 s
        admin = server.token("root", role="admin", groups=("admin",))
        assert (await call(server.url, admin, "POST", "/users/dave/revoke_tokens", {}))[0] == 200
        started = time.monotonic()
        while await status_of(replica_b.url, token) != 401:
            assert time.monotonic() - started < REFRESH_SECONDS + 5, "replica B still accepts a revoked token"
            await asyncio.sleep(0.1)
    finally:
        await runner_b.cleanup()
        await store_b.close()


def test_cli_token_revoke(server_settings, tmp_path):
    """``frazil token revoke USER`` on the installation's store, while a real
    server process serves from it."""
    env = {**os.environ, "FRAZIL_DB": server_settings.db, "FRAZIL_DATA_DIR": server_settings.data_dir,
           "FRAZIL_PORT": str(server_settings.port), "FRAZIL_PROVIDER": "none", "FRAZIL_LOOPS": "false"}
    cli = [sys.executable, "-m", "server.cli"]
    token = subprocess.run([*cli, "token", "create", "erin"], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    server = subprocess.Popen([*cli, "server"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{server_settings.port}"
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(_status_or_none(url, token)) != 200:
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        done = subprocess.run([*cli, "token", "revoke", "erin"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "user:erin" in done.stdout
        started = time.monotonic()
        while asyncio.run(_status_or_none(url, token)) != 401:
            assert time.monotonic() - started < 6, "the server still accepts a revoked token"
            time.sleep(0.1)
        one, other = (subprocess.run([*cli, "token", "create", "frank"], env=env, capture_output=True, text=True,
                                     check=True).stdout.strip() for _ in range(2))
        assert asyncio.run(_status_or_none(url, one)) == 200
        done = subprocess.run([*cli, "token", "revoke", "--token", one], env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "token:" in done.stdout, done.stderr
        started = time.monotonic()
        while asyncio.run(_status_or_none(url, one)) != 401:
            assert time.monotonic() - started < 6, "the server still accepts a revoked token"
            time.sleep(0.1)
        assert asyncio.run(_status_or_none(url, other)) == 200  # only that one token
        junk = subprocess.run([*cli, "token", "revoke", "--token", "not-a-token"], env=env, capture_output=True,
                              text=True)
        assert junk.returncode != 0 and "jti" in junk.stderr and "Traceback" not in junk.stderr
        bad = subprocess.run([*cli, "token", "revoke"], env=env, capture_output=True, text=True)
        assert bad.returncode == 2 and "exactly one" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _status_or_none(url: str, token: str) -> int | None:
    try:
        return await status_of(url, token)
    except aiohttp.ClientError:
        return None


async def test_expired_tokens_get_at_most_five_seconds_of_leeway(server):
    from server.keys import TOKENS
    tokens = server.app[TOKENS]
    assert await status_of(server.url, tokens.create("frank", expiration=-8)) == 401  # the library allowed 60 s
    assert await status_of(server.url, tokens.create("frank", expiration=-2)) == 200  # within the 5 s leeway


async def test_revocation_ends_website_sessions(server):
    admin = server.token("root", role="admin", groups=("admin",))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(server.url + "/login") as page:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert csrf
        form = {"token": server.token("gina"), "csrf_token": html.unescape(csrf.group(1))}
        async with browser.post(server.url + "/login", data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        assert any(c.key == COOKIE for c in browser.cookie_jar)
        async with browser.get(server.url + "/profile", allow_redirects=False) as page:
            assert page.status == 200
        assert (await call(server.url, admin, "POST", "/users/gina/revoke_tokens", {}))[0] == 200
        async with browser.get(server.url + "/profile", allow_redirects=False) as page:
            assert page.status in (302, 303, 401)
