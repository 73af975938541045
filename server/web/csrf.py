"""CSRF protection for every POST form.

Signed-in forms carry a token bound to the session (an HMAC of the
session's nonce): a forged cross-site form cannot know it, and it changes at
every login. The login form has no session yet, so it uses a double-submit
cookie instead (a random value both in a SameSite cookie and in the form).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from server.web.sessions import Session

FIELD = "csrf_token"
LOGIN_COOKIE = "frazil_login_csrf"


def session_token(key: bytes, session: Session) -> str:
    return hmac.new(key, f"csrf:{session.nonce}".encode(), hashlib.sha256).hexdigest()


def check_session_token(key: bytes, session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session_token(key, session), str(submitted))


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def check_login_token(cookie: str | None, submitted: str | None) -> bool:
    return bool(cookie) and bool(submitted) and hmac.compare_digest(str(cookie), str(submitted))
