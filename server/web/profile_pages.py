"""``/profile``: a user's and their groups' storage credentials (never a secret).

Lists URL, type, scope, expiry, last refresh and state; adds one (paste an
access token, optionally a refresh token, or S3 keys; or get one through the
issuer's OIDC device-code flow) and deletes one. The
rights are the API's: one's own user and one's own groups.
"""
from __future__ import annotations

from aiohttp import web

from server.credentials.cipher import CipherError
from server.credentials.device import DeviceFlowError
from server.credentials.keys import CIPHER, DEVICE_FLOWS
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


@routes.page("/profile/device", method="POST")
async def start_device_flow(request: web.Request) -> web.StreamResponse:
    """Start an OIDC device-code flow at the named issuer for a new credential."""
    form = await form_data(request)
    kind, owner = _owner(request, form)
    url, issuer = form.get("url", "").strip(), form.get("issuer", "").strip()
    if not url or not issuer:
        raise PageError(400, "url and issuer are required")
    try:
        flow_id, _flow = await request.app[DEVICE_FLOWS].start(
            username=session_of(request).username, owner_kind=kind, owner=owner, url=url, issuer=issuer,
            scope=form.get("scope", "").strip())
    except DeviceFlowError as exc:
        raise PageError(400, str(exc)) from None
    raise web.HTTPSeeOther(f"/profile/device/{flow_id}")


@routes.page("/profile/device/{flow_id}")
async def device_flow(request: web.Request) -> web.StreamResponse:
    try:
        flow = request.app[DEVICE_FLOWS].get(request.match_info["flow_id"], session_of(request).username)
    except DeviceFlowError as exc:
        raise PageError(404, str(exc)) from None
    return render(request, "profile_device.html", flow=flow, flow_id=request.match_info["flow_id"],
                  message=request.query.get("message", ""))


@routes.page("/profile/device/{flow_id}", method="POST")
async def finish_device_flow(request: web.Request) -> web.StreamResponse:
    flow_id, username = request.match_info["flow_id"], session_of(request).username
    flows = request.app[DEVICE_FLOWS]
    try:
        flow = flows.get(flow_id, username)
        answer = await flows.poll(flow_id, username)
    except DeviceFlowError as exc:
        raise PageError(400, str(exc)) from None
    if answer is None:
        raise web.HTTPSeeOther(f"/profile/device/{flow_id}?message=not+approved+yet")
    body = {"url": flow.url, "type": "oauth", "access_token": str(answer["access_token"])}
    if isinstance(answer.get("refresh_token"), str):
        body["refresh_token"] = answer["refresh_token"]
    try:
        await _service(request).put(flow.owner_kind, flow.owner, body)
    except CredentialInputError as exc:
        raise PageError(400, str(exc)) from None
    raise web.HTTPSeeOther("/profile?message=credential+saved")
