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

from server.auth.identity import PILOT_REGISTER_SCOPE, PILOT_USERNAME, ROLES, Identity, identity_from_claims
from server.store.records import Revocation

DEFAULT_EXPIRATION = 365 * 24 * 3600
LEEWAY_SECONDS = 5.0
"""Clock leeway for ``exp``/``nbf``/``iat`` (the library's default is 60 s:
an expired token would live a minute longer)."""


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
        self.local = Auth(secret, issuer=issuer, algorithm="HS512", expiration=DEFAULT_EXPIRATION,
                          leeway=LEEWAY_SECONDS)
        self.openid = (OpenIDAuth(openid_url, audience=audience or None, leeway=LEEWAY_SECONDS)
                       if openid_url else None)
        # Pilots send the same token with every claim and report; checking its
        # signature each time is a measurable part of the claim path. A checked
        # token is remembered until it expires, at most CACHE_SECONDS — with
        # its issue time and id, so a revocation (checked on EVERY call, from
        # memory) beats the cache.
        self._cache: dict[str, tuple[float, Identity, float, str]] = {}
        self._revoked: dict[str, Revocation] = {}

    def create(self, username: str, role: str = "user", groups: list[str] | tuple[str, ...] = (),
               expiration: int | None = None, claims: dict[str, str] | None = None) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if not username or not username.strip():
            raise ValueError("a token needs a user name")
        payload: dict[str, Any] = {"role": role, "groups": sorted(set(groups)), "preferred_username": username,
                                   "jti": secrets.token_hex(8),  # the token id `frazil token revoke --token-id` names
                                   **(claims or {})}
        return self.local.create_token(username, expiration=expiration, payload=payload)

    def create_bootstrap(self, expiration: int, username: str = PILOT_USERNAME) -> str:
        """What a provider hands a pilot it starts (and ``frazil token create
        --role pilot``): a pilot token that may only register."""
        return self.create(username, role="pilot", expiration=expiration, claims={"scope": PILOT_REGISTER_SCOPE})

    def create_for_pilot(self, pilot_id: str, expiration: int, username: str = PILOT_USERNAME) -> str:
        """A registered pilot's token: bound to its ``pilot_id``, renewed by its heartbeats."""
        return self.create(username, role="pilot", expiration=expiration, claims={"pilot_id": pilot_id})

    def identify(self, token: str) -> Identity:
        cached = self._cache.get(token)
        now = time.time()
        if cached is None or cached[0] <= now:
            identity, expires, issued, token_id = self._validate(token)
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            cached = self._cache[token] = (min(expires, now + self.CACHE_SECONDS), identity, issued, token_id)
        self._check_revoked(cached[1], cached[2], cached[3])
        return cached[1]

    def set_revocations(self, revocations: list[Revocation]) -> None:
        """The store's revocations (every replica reloads them every second)."""
        self._revoked = {r.subject: r for r in revocations}

    def revoke(self, revocation: Revocation) -> None:
        """Apply one revocation here at once (this replica made it)."""
        known = self._revoked.get(revocation.subject)
        at = max(revocation.revoked_at, known.revoked_at) if known else revocation.revoked_at
        self._revoked[revocation.subject] = Revocation(revocation.subject, at, revocation.deleted)

    def user_revoked(self, username: str, issued: float) -> str | None:
        """Why a credential of ``username`` issued at ``issued`` (a token, a
        website session) no longer counts; None while it does."""
        user = self._revoked.get(f"user:{username}")
        if user is None:
            return None
        if user.deleted:
            return f"user {username!r} was deleted"
        if issued <= user.revoked_at:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(user.revoked_at))
            return f"token revoked: the tokens of {username!r} issued up to {when} were revoked"
        return None

    def _check_revoked(self, identity: Identity, issued: float, token_id: str) -> None:
        if not self._revoked:
            return
        reason = self.user_revoked(identity.username, issued)
        if reason:
            raise TokenError(reason)
        if token_id and f"token:{token_id}" in self._revoked:
            raise TokenError(f"token revoked (token id {token_id})")

    def _validate(self, token: str) -> tuple[Identity, float, float, str]:
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
                issued = float(claims.get("iat", 0) or 0)
                return identity_from_claims(claims), expires, issued, str(claims.get("jti") or "")
            except (TypeError, ValueError) as exc:
                raise TokenError(str(exc)) from None
        raise TokenError(f"invalid token: {errors[0] if errors else 'no validator'}")
