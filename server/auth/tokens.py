"""Bearer tokens: minting (local key) and validation (local key or OpenID Connect).

Validation is wipac-rest-tools' (``Auth`` for the local HS512 key,
``OpenIDAuth`` for an issuer), the library IceProd clients already use.
"""
from __future__ import annotations

import os
import pathlib
import secrets
import time
from typing import Any

from rest_tools.utils.auth import Auth, OpenIDAuth

from server.auth.identity import ROLES, Identity, identity_from_claims

DEFAULT_EXPIRATION = 365 * 24 * 3600


class TokenError(Exception):
    """The bearer token is missing, malformed, expired or signed by someone else (401)."""


def load_or_create_key(path: pathlib.Path) -> str:
    """The local signing key; created (owner-only) on first use so a fresh
    install needs no setup, and kept so tokens survive restarts."""
    if path.exists():
        key = path.read_text().strip()
        if len(key) < 32:
            raise ValueError(f"signing key {path} is too short; delete it to make a new one")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(64)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


class TokenAuthority:
    """Mints and validates tokens for one server."""

    CACHE_SIZE = 10_000
    CACHE_SECONDS = 60.0

    def __init__(self, secret: str, *, issuer: str = "frazil", openid_url: str = "", audience: str = ""):
        self.local = Auth(secret, issuer=issuer, algorithm="HS512", expiration=DEFAULT_EXPIRATION)
        self.openid = OpenIDAuth(openid_url, audience=audience or None) if openid_url else None
        # Pilots send the same token with every claim and report; checking its
        # signature each time is a measurable part of the claim path. A checked
        # token is remembered until it expires, at most CACHE_SECONDS.
        self._cache: dict[str, tuple[float, Identity]] = {}

    def create(self, username: str, role: str = "user", groups: list[str] | tuple[str, ...] = (),
               expiration: int | None = None) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if not username or not username.strip():
            raise ValueError("a token needs a user name")
        payload: dict[str, Any] = {"role": role, "groups": sorted(set(groups)), "preferred_username": username}
        return self.local.create_token(username, expiration=expiration, payload=payload)

    def identify(self, token: str) -> Identity:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        identity, expires = self._validate(token)
        if len(self._cache) >= self.CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = (min(expires, now + self.CACHE_SECONDS), identity)
        return identity

    def _validate(self, token: str) -> tuple[Identity, float]:
        errors = []
        for validator in (self.local, self.openid):
            if validator is None:
                continue
            try:
                claims = validator.validate(token)
            except Exception as exc:  # the library raises jwt's many error types
                errors.append(str(exc) or type(exc).__name__)
                continue
            try:
                expires = float(claims.get("exp", 0) or 0)
                return identity_from_claims(claims), expires
            except (TypeError, ValueError) as exc:
                raise TokenError(str(exc)) from None
        raise TokenError(f"invalid token: {errors[0] if errors else 'no validator'}")
