"""``/login`` (paste a token, or OpenID Connect when an issuer is set) and ``/logout``.

The pasted token is validated exactly as the API validates bearer tokens
(:meth:`TokenAuthority.identify`), then forgotten: only the identity goes
into the signed session cookie.

OpenID Connect (``settings.openid_url``): ``/login/oidc`` sends the browser
to the issuer's authorization endpoint (authorization-code flow with PKCE; the
state and the code verifier are kept in a 10-minute cookie); ``/login/oidc/callback`` exchanges the code at
the token endpoint and validates the returned access token with the same
authority. The issuer must list ``<public_url>/login/oidc/callback`` as a
redirect URI for ``settings.extra["openid_client_id"]`` (default ``frazil``).
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from server.auth import TokenError
from server.keys import SETTINGS, TOKENS
from server.web import csrf
from server.web.framework import PageRoutes, current_session, render, safe_next, state
from server.web.sessions import COOKIE, token_expiry

routes = PageRoutes()
OIDC_STATE_COOKIE = "frazil_oidc_state"
COOKIE_OPTIONS = {"httponly": True, "samesite": "Lax", "path": "/"}


def _login_form(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    token = request.cookies.get(csrf.LOGIN_COOKIE) or csrf.new_login_token()
    response = render(request, "login.html", status=status, error=error, login_csrf=token,
                      next=safe_next(request.query.get("next")))
    response.set_cookie(csrf.LOGIN_COOKIE, token, max_age=3600, **COOKIE_OPTIONS)
    return response


def start_session(request: web.Request, token: str, target: str) -> web.Response:
    """Validate ``token`` and answer with the session cookie and a redirect."""
    identity = request.app[TOKENS].identify(token)
    if identity.role in ("pilot", "system"):  # programs' tokens: nobody's session
        raise TokenError(f"{identity.role} tokens cannot sign in to the website")
    session = state(request.app).codec.new_session(identity, token_expires=token_expiry(token))
    response = web.HTTPSeeOther(target)
    secure = request.secure
    response.set_cookie(COOKIE, state(request.app).codec.encode(session), secure=secure, **COOKIE_OPTIONS)
    response.del_cookie(csrf.LOGIN_COOKIE, path="/")
    return response  # type: ignore[return-value]


@routes.page("/login", login=False)
async def login_page(request: web.Request) -> web.StreamResponse:
    if current_session(request) is not None and "next" not in request.query:
        raise web.HTTPSeeOther("/dataset")
    return _login_form(request)


@routes.page("/login", method="POST", login=False)
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    submitted, token = form.get(csrf.FIELD), form.get("token")
    if not csrf.check_login_token(request.cookies.get(csrf.LOGIN_COOKIE),
                                  submitted if isinstance(submitted, str) else None):
        return _login_form(request, error="the form expired; please try again", status=403)
    if not isinstance(token, str) or not token.strip():
        return _login_form(request, error="paste a token (frazil token create)", status=400)
    nxt = form.get("next")
    try:
        raise start_session(request, token.strip(), safe_next(nxt if isinstance(nxt, str) else None))
    except TokenError as exc:
        return _login_form(request, error=f"this token cannot sign in: {exc}", status=401)


@routes.page("/logout", login=False)
async def logout(request: web.Request) -> web.StreamResponse:
    """GET shows a confirmation form; signing out is a POST so other sites cannot do it."""
    return render(request, "logout.html")


@routes.page("/logout", method="POST")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def _discovery(issuer: str) -> dict:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        async with client.get(issuer.rstrip("/") + "/.well-known/openid-configuration") as reply:
            reply.raise_for_status()
            return await reply.json()


def _client_id(request: web.Request) -> str:
    return str(request.app[SETTINGS].extra.get("openid_client_id", "frazil"))


def _redirect_uri(request: web.Request) -> str:
    return request.app[SETTINGS].resolved_public_url().rstrip("/") + "/login/oidc/callback"


@routes.page("/login/oidc", login=False)
async def oidc_start(request: web.Request) -> web.StreamResponse:
    issuer = request.app[SETTINGS].openid_url
    if not issuer:
        return render(request, "error.html", status=404, code=404, message="OpenID Connect is not configured")
    try:
        config = await _discovery(issuer)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return render(request, "error.html", status=502, code=502, message=f"the issuer did not answer: {exc}")
    value, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = urlencode({"response_type": "code", "client_id": _client_id(request), "scope": "openid profile",
                       "redirect_uri": _redirect_uri(request), "state": value,
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    response = web.HTTPSeeOther(f"{config['authorization_endpoint']}?{query}")
    response.set_cookie(OIDC_STATE_COOKIE, f"{value}.{verifier}", max_age=600, **COOKIE_OPTIONS)
    raise response


@routes.page("/login/oidc/callback", login=False)
async def oidc_callback(request: web.Request) -> web.StreamResponse:
    issuer = request.app[SETTINGS].openid_url
    expected, _, verifier = request.cookies.get(OIDC_STATE_COOKIE, "").partition(".")
    if not issuer or not expected or not secrets.compare_digest(expected, request.query.get("state", "")):
        return _login_form(request, error="the sign-in did not come from this site; try again", status=403)
    try:
        config = await _discovery(issuer)
        form = {"grant_type": "authorization_code", "code": request.query.get("code", ""),
                "redirect_uri": _redirect_uri(request), "client_id": _client_id(request), "code_verifier": verifier}
        secret = request.app[SETTINGS].extra.get("openid_client_secret")
        if secret:
            form["client_secret"] = str(secret)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
            async with client.post(config["token_endpoint"], data=form) as reply:
                reply.raise_for_status()
                token = (await reply.json())["access_token"]
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
        return _login_form(request, error=f"the issuer refused the sign-in: {exc}", status=502)
    try:
        response = start_session(request, token, "/dataset")
    except TokenError as exc:
        return _login_form(request, error=f"this account cannot sign in: {exc}", status=401)
    response.del_cookie(OIDC_STATE_COOKIE, path="/")
    raise response
