"""Website sessions in a signed cookie.

The cookie holds only who the user is (username, role, groups), when the
session ends and a random nonce the CSRF token is bound to. It never holds
the access token the user pasted (IceProd embedded the token in every page,
reference §11). The signature is an HMAC with a key derived from the
server's signing key, so sessions survive restarts and any replica sharing
the key accepts them, yet a session cookie can never pass as a bearer token.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from server.auth import Identity

COOKIE = "frazil_session"
SESSION_SECONDS = 12 * 3600
"""Longest session; shorter when the pasted token expires sooner."""


@dataclass(frozen=True)
class Session:
    username: str
    role: str
    groups: tuple[str, ...]
    expires: float
    """Epoch seconds."""
    nonce: str
    """Random per login; the CSRF token is an HMAC of it."""
    issued: float = 0.0
    """Epoch seconds of the login: a revocation of the user's tokens ends older sessions."""

    @property
    def identity(self) -> Identity:
        return Identity(username=self.username, role=self.role, groups=frozenset(self.groups))

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def derive_key(server_secret: str, purpose: str) -> bytes:
    """A key for one purpose only, so a value signed for one use is useless for another."""
    return hmac.new(server_secret.encode(), f"frazil web {purpose} v1".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signs and checks session cookies."""

    def __init__(self, key: bytes):
        self.key = key

    def new_session(self, identity: Identity, *, token_expires: float | None = None,
                    now: float | None = None) -> Session:
        now = time.time() if now is None else now
        expires = now + SESSION_SECONDS
        if token_expires is not None:
            expires = min(expires, token_expires)
        return Session(identity.username, identity.role, tuple(sorted(identity.groups)), expires,
                       secrets.token_urlsafe(16), now)

    def encode(self, session: Session) -> str:
        payload = json.dumps({"u": session.username, "r": session.role, "g": list(session.groups),
                              "e": session.expires, "n": session.nonce, "i": session.issued}, separators=(",", ":")).encode()
        body = _b64(payload)
        return f"{body}.{_b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())}"

    def decode(self, cookie: str, *, now: float | None = None) -> Session | None:
        """The session, or None when the cookie is forged, damaged or expired."""
        body, _, signature = cookie.partition(".")
        expected = _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature, expected):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(str(data["u"]), str(data["r"]), tuple(str(g) for g in data["g"]),
                              float(data["e"]), str(data["n"]), float(data.get("i", 0.0)))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of an already validated JWT (read without checking
    again), so a session never outlives the token it was made from."""
    try:
        claims = json.loads(_unb64(token.split(".")[1]))
        return float(claims["exp"]) if "exp" in claims else None
    except (IndexError, binascii.Error, ValueError, KeyError, TypeError):
        return None
