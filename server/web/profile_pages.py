"""``/profile``: a user's and their groups' storage credentials (never a secret).

Lists URL, type, scope, expiry, last refresh and state; adds one (paste an
access token, optionally a refresh token, or S3 keys) and deletes one. The
rights are the API's: one's own user and one's own groups.
"""
from __future__ import annotations

from aiohttp import web

from server.credentials.cipher import CipherError
from server.credentials.keys import CIPHER
from server.credentials.service import CredentialInputError, CredentialService, public_doc
from server.keys import SETTINGS, STORE
from server.web.framework import PageError, PageRoutes, form_data, render, session_of

routes = PageRoutes()


def _service(request: web.Request) -> CredentialService:
    return CredentialService(request.app[STORE], request.app[CIPHER], request.app[SETTINGS].token_clients)


def _owner(request: web.Request, form: dict[str, str]) -> tuple[str, str]:
    """(kind, owner) from the form's ``owner`` (``user`` or ``group:<name>``), checked against the session."""
    session = session_of(request)
    choice = form.get("owner", "user")
    if choice == "user":
        return "user", session.username
    kind, _, name = choice.partition(":")
    if kind != "group" or not (name in session.groups or session.is_admin):
        raise PageError(403, "you may only manage your own and your groups' credentials")
    return "group", name


@routes.page("/profile")
async def profile(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    store = request.app[STORE]
    mine = await store.list_credentials("user", [session.username])
    groups = await store.list_credentials("group", list(session.groups))
    return render(request, "profile.html", credentials=[public_doc(c) for c in mine + groups],
                  groups=list(session.groups), message=request.query.get("message", ""))


@routes.page("/profile/credentials", method="POST")
async def add_credential(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    kind, owner = _owner(request, form)
    body = {k: v.strip() for k, v in form.items()
            if k in ("url", "type", "access_token", "refresh_token", "access_key", "secret_key", "scope") and v.strip()}
    if form.get("buckets", "").strip():
        body["buckets"] = [b for b in form["buckets"].replace(",", " ").split() if b]
    try:
        await _service(request).put(kind, owner, body)
    except CredentialInputError as exc:
        raise PageError(400, str(exc)) from None
    except CipherError as exc:
        raise PageError(409, str(exc)) from None
    raise web.HTTPSeeOther("/profile?message=credential+saved")


@routes.page("/profile/credentials/delete", method="POST")
async def delete_credential(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    kind, owner = _owner(request, form)
    if not form.get("url"):
        raise PageError(400, "url is required")
    if not await request.app[STORE].delete_credentials(kind, owner, form["url"]):
        raise PageError(404, "no such credential")
    raise web.HTTPSeeOther("/profile?message=credential+deleted")
