"""A small OAuth token issuer for trying tokens on one machine (tests, ``make run``).

It signs WLCG-profile tokens with the real ``scitokens`` library, publishes its
keys (``/.well-known/openid-configuration`` → ``jwks_uri``) and answers the
token endpoint's ``refresh_token``, RFC 8693 token-exchange and RFC 8628
device-code grants — what frazil's credential refresh, per-attempt narrowing
and the /profile page use (:meth:`Issuer.approve` plays the approving user). It is not
an identity provider: :meth:`Issuer.mint` is how tokens come into being.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

import jwt
import scitokens
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
WLCG_ANY = "https://wlcg.cern.ch/jwt/v1/any"


def _covered(scope: str, held: set[str]) -> bool:
    """Whether ``scope`` is one of ``held`` or narrower (same verb, a path at or under it)."""
    verb, _, path = scope.partition(":")
    for have in held:
        have_verb, _, have_path = have.partition(":")
        if have_verb == verb and (path == have_path or path.startswith(have_path.rstrip("/") + "/")):
            return True
    return False


@dataclass
class Grant:
    subject: str
    scope: str


@dataclass
class Issuer:
    url: str = ""
    lifetime: int = 600
    kid: str = field(default_factory=lambda: secrets.token_hex(4))
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    devices: dict[str, tuple[str, str, Grant | None]] = field(default_factory=dict)
    """device_code -> (user_code, scope, the grant once a user approved it)."""
    refreshes: int = 0
    exchanges: int = 0

    def mint(self, scope: str, subject: str = "frazil-test", lifetime: int | None = None) -> str:
        token = scitokens.SciToken(key=self.key, key_id=self.kid)
        token.update_claims({"scope": scope, "sub": subject, "aud": WLCG_ANY, "wlcg.ver": "1.0"})
        return token.serialize(issuer=self.url, lifetime=self.lifetime if lifetime is None else lifetime).decode()

    def refresh_token(self, scope: str, subject: str = "frazil-test") -> str:
        value = secrets.token_urlsafe(24)
        self.refresh_tokens[value] = Grant(subject, scope)
        return value

    def approve(self, user_code: str, subject: str = "frazil-test") -> bool:
        """What a user does at the verification page: approve a pending device code."""
        for device_code, (code, scope, _grant) in self.devices.items():
            if code == user_code:
                self.devices[device_code] = (code, scope, Grant(subject, scope))
                return True
        return False

    async def device_endpoint(self, request: web.Request) -> web.Response:
        form = await request.post()
        device_code, user_code = secrets.token_urlsafe(24), secrets.token_hex(4).upper()
        self.devices[device_code] = (user_code, str(form.get("scope", "")), None)
        return web.json_response({"device_code": device_code, "user_code": user_code,
                                  "verification_uri": self.url + "/device", "expires_in": 600, "interval": 1})

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def _answer(self, grant: Grant, refresh: str | None = None) -> web.Response:
        body = {"access_token": self.mint(grant.scope, grant.subject), "token_type": "Bearer",
                "expires_in": self.lifetime, "scope": grant.scope}
        if refresh:
            body["refresh_token"] = refresh
        return web.json_response(body)

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = await request.post()
        kind = form.get("grant_type")
        if kind == "refresh_token":
            grant = self.refresh_tokens.pop(str(form.get("refresh_token", "")), None)
            if grant is None:
                return web.json_response({"error": "invalid_grant"}, status=400)
            self.refreshes += 1
            new = secrets.token_urlsafe(24)  # rotated, as Keycloak does
            self.refresh_tokens[new] = grant
            return self._answer(grant, new)
        if kind == EXCHANGE:
            try:
                claims = jwt.decode(str(form.get("subject_token", "")), self.key.public_key(),
                                    algorithms=["RS256"], options={"verify_aud": False})
            except jwt.PyJWTError:
                return web.json_response({"error": "invalid_grant"}, status=400)
            held = set(str(claims.get("scope", "")).split())
            wanted = str(form.get("scope", "")).split() or sorted(held)
            if not all(_covered(scope, held) for scope in wanted):
                return web.json_response({"error": "invalid_scope"}, status=400)
            self.exchanges += 1
            return self._answer(Grant(str(claims.get("sub", "")), " ".join(wanted)))
        if kind == DEVICE:
            entry = self.devices.get(str(form.get("device_code", "")))
            if entry is None:
                return web.json_response({"error": "expired_token"}, status=400)
            if entry[2] is None:
                return web.json_response({"error": "authorization_pending"}, status=400)
            del self.devices[str(form.get("device_code"))]
            return self._answer(entry[2], self.refresh_token(entry[2].scope, entry[2].subject))
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    def app(self) -> web.Application:
        app = web.Application()

        async def configuration(_request: web.Request) -> web.Response:
            return web.json_response({
                "issuer": self.url, "jwks_uri": self.url + "/jwks", "token_endpoint": self.url + "/token",
                "device_authorization_endpoint": self.url + "/device_authorization",
                "grant_types_supported": ["refresh_token", EXCHANGE, DEVICE]})

        async def keys(_request: web.Request) -> web.Response:
            return web.json_response(self.jwks())

        app.router.add_get("/.well-known/openid-configuration", configuration)
        app.router.add_get("/jwks", keys)
        app.router.add_post("/token", self.token_endpoint)
        app.router.add_post("/device_authorization", self.device_endpoint)
        return app


async def serve_issuer(port: int = 0) -> tuple[Issuer, web.AppRunner]:
    """Start an issuer on 127.0.0.1 (plain HTTP: it is for one machine)."""
    issuer = Issuer()
    runner = web.AppRunner(issuer.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    issuer.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
    return issuer, runner
