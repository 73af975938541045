"""OpenID Connect sign-in against a small issuer running on 127.0.0.1 (its
own thread, because wipac-rest-tools fetches the issuer's keys with blocking
requests): discovery, authorization-code flow with PKCE and state, the code
exchanged for an RS256 access token validated with IceProd's claim rules.
A real Keycloak is not available here; this issuer speaks the same protocol."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator
from urllib.parse import urlencode

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from server.app import create_app
from server.settings import Settings
from server.store import open_store
from tests.server.conftest import free_port


@dataclass
class Issuer:
    url: str
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=lambda: {
        "preferred_username": "ingrid", "groups": ["/institutions/IceCube/UW-Madison", "/posix/simprod-submit"]})

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.get("/.well-known/openid-configuration", self.discovery), web.get("/certs", self.certs),
                        web.get("/auth", self.authorize), web.post("/token", self.token)])
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": self.url, "authorization_endpoint": f"{self.url}/auth",
                                  "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/certs"})

    async def certs(self, request: web.Request) -> web.Response:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})

    async def authorize(self, request: web.Request) -> web.Response:
        """The user is already signed in at the issuer and consents at once."""
        query = request.query
        assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(8)
        self.codes[code] = {"challenge": query["code_challenge"], "redirect_uri": query["redirect_uri"]}
        raise web.HTTPFound(f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.codes.pop(str(form["code"]), None)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if grant is None or challenge != grant["challenge"] or form["redirect_uri"] != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        token = jwt.encode({**self.claims, "iss": self.url, "iat": now, "exp": now + 300, "sub": "u-1"},
                           self.key, algorithm="RS256", headers={"kid": "k1"})
        return web.json_response({"access_token": token, "token_type": "Bearer"})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    port = free_port()
    found = Issuer(f"http://127.0.0.1:{port}")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(found.app())
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
async def oidc_server(tmp_path, issuer: Issuer) -> AsyncIterator[str]:
    port = free_port()
    settings = Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), port=port,
                        provider="none", loops=False, openid_url=issuer.url,
                        public_url=f"http://127.0.0.1:{port}")
    store = await open_store(settings.db)
    app = await asyncio.to_thread(create_app, settings, store=store)  # fetches the issuer's keys (blocking)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield settings.public_url
    finally:
        await runner.cleanup()
        await store.close()


async def test_openid_connect_sign_in(oidc_server: str, issuer: Issuer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(f"{oidc_server}/login") as reply:
            assert 'href="/login/oidc"' in await reply.text()
        async with client.get(f"{oidc_server}/login/oidc") as reply:  # issuer, callback, session, datasets
            page = await reply.text()
            assert reply.status == 200 and reply.url.path == "/dataset", page
        assert "ingrid (user: simprod, users)" in page
        assert not any(c.key == "frazil_oidc_state" and c.value for c in client.cookie_jar)


async def test_openid_connect_refuses_a_forged_callback(oidc_server: str, issuer: Issuer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(f"{oidc_server}/login/oidc", allow_redirects=False) as reply:
            assert reply.status == 303 and reply.headers["Location"].startswith(f"{issuer.url}/auth?")
        async with client.get(f"{oidc_server}/login/oidc/callback?code=stolen&state=guessed") as reply:
            assert reply.status == 403 and "did not come from this site" in await reply.text()
    issuer.claims = {"preferred_username": "eve", "groups": ["/somewhere/else"]}  # no frazil role
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(f"{oidc_server}/login/oidc") as reply:
            assert reply.status == 401 and "cannot sign in" in await reply.text()
