"""Bearer-token checks for the origin, with the real ``scitokens`` library.

The issuer's signing keys are fetched from its ``/.well-known/openid-configuration``
→ ``jwks_uri`` (over the network, once per key id) and handed to
``SciToken.deserialize``; the scopes are judged by ``scitokens.Enforcer``.
Scope paths are relative to the namespace, as in Pelican: a token for the
namespace ``/icecube/wipac`` with ``storage.read:/data/sim`` may read
``/icecube/wipac/data/sim/...``.
"""
from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field

import aiohttp
import jwt
import scitokens
from cryptography.hazmat.primitives import serialization

# WLCG token profile: reading needs storage.read; writing storage.modify, or storage.create
# for a new file. The SciToken 1.0 scopes read/write are understood as well.
READ_SCOPES = ("storage.read", "read")
WRITE_SCOPES = ("storage.modify", "storage.create", "write")
# The audiences an origin accepts: the WLCG "any" audience and its own URLs.
ANY_AUDIENCES = ("https://wlcg.cern.ch/jwt/v1/any", "ANY")


class TokenRejected(Exception):
    """Why a request is refused: ``status`` 401 (no/invalid token) or 403 (scope missing)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class TokenChecker:
    issuer: str
    audiences: list[str]
    ssl_context: ssl.SSLContext | bool = True
    _keys: dict[str, bytes] = field(default_factory=dict)

    async def _fetch_keys(self) -> None:
        config_url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(config_url, ssl=self.ssl_context) as resp:
                resp.raise_for_status()
                jwks_uri = json.loads(await resp.text())["jwks_uri"]
            async with session.get(jwks_uri, ssl=self.ssl_context) as resp:
                resp.raise_for_status()
                keys = json.loads(await resp.text()).get("keys", [])
        for jwk in keys:
            public = jwt.PyJWK(jwk).key
            self._keys[jwk.get("kid", "")] = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    async def _public_key(self, token: str) -> bytes:
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
        except jwt.PyJWTError:
            raise TokenRejected(401, "the bearer token is not a JWT") from None
        if kid not in self._keys:
            try:
                await self._fetch_keys()
            except (aiohttp.ClientError, OSError, TimeoutError, KeyError, ValueError) as exc:
                raise TokenRejected(401, f"cannot fetch the issuer's keys: {type(exc).__name__}") from None
        if kid not in self._keys:
            raise TokenRejected(401, "the token is signed with a key the issuer does not publish")
        return self._keys[kid]

    async def check(self, authorization: str | None, write: bool, relative_path: str) -> None:
        """Raise TokenRejected unless ``authorization`` allows the operation on the path.

        ``relative_path`` is the object's path inside its namespace (it starts with "/").
        """
        if not authorization or not authorization.startswith("Bearer "):
            raise TokenRejected(401, "a bearer token is required")
        token = authorization[len("Bearer "):].strip()
        key = await self._public_key(token)
        try:
            parsed = scitokens.SciToken.deserialize(token, public_key=key)
        except Exception as exc:  # scitokens and PyJWT raise many types for one meaning
            raise TokenRejected(401, f"invalid token: {type(exc).__name__}") from None
        enforcer = scitokens.Enforcer(self.issuer, audience=[*self.audiences, *ANY_AUDIENCES])
        # WLCG tokens carry claims the SciTokens enforcer has no validator for.
        for claim in ("wlcg.ver", "wlcg.groups", "client_id", "azp", "auth_time", "sid", "typ"):
            enforcer.add_validator(claim, lambda _value: True)
        wanted = WRITE_SCOPES if write else READ_SCOPES
        for authz in wanted:
            if enforcer.test(parsed, authz, relative_path):
                return
        failure = enforcer.last_failure or ""
        if failure and "scope" not in failure:
            raise TokenRejected(401, f"token rejected: {failure}")
        raise TokenRejected(403, f"token lacks scope {wanted[0]}:{relative_path}")
