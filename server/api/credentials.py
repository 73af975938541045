"""IceProd's credentials routes (reference §4.5): users', groups', datasets' and tasks' credentials.

Rights as IceProd's: a user manages their own and their groups' credentials,
admins and system tokens (IceProd's services) everyone's; dataset and
per-task credentials are admins' and system's. Pilot tokens get no
credential here: an attempt's token comes with its claim. Replies never carry a secret (``access_token``, ``refresh_token``,
``access_key``, ``secret_key``).
"""
from __future__ import annotations

import time

from aiohttp import web

from server.api.errors import ApiError, bad_request, forbidden, not_found
from server.api.params import json_body, json_reply
from server.api.routing import ALL_ROLES, SERVICE_ROLES, ApiRoutes, QueryParam, caller
from server.credentials.cipher import CipherError
from server.credentials.keys import CIPHER
from server.credentials.service import CredentialInputError, CredentialService
from server.keys import SETTINGS, STORE

routes = ApiRoutes("credentials")
URL_QUERY = [QueryParam("url", "only the credential for this url")]
LIST_QUERY = [*URL_QUERY, QueryParam("transfer_prefix", "only credentials with this transfer_prefix"),
              QueryParam("scope", "only credentials holding all these (space-separated) scopes"),
              QueryParam("norefresh", "true: do not refresh credentials about to expire before listing")]


LISTING_REFRESH_TIMEOUT = 5.0
"""Seconds a listing waits for an issuer (the loop refreshes anyway): a slow issuer must not hang it."""


def service(request: web.Request, timeout: float = 30.0) -> CredentialService:
    return CredentialService(request.app[STORE], request.app[CIPHER], request.app[SETTINGS].token_clients,
                             timeout=timeout)


def _owner(request: web.Request, kind: str) -> str:
    """The owner the path names, after the rights check."""
    identity = caller(request)
    match = request.match_info
    if kind == "user":
        owner = match["username"]
        if not (identity.acts_for_anyone or identity.username == owner):
            raise forbidden("users may only manage their own credentials")
    elif kind == "group":
        owner = match["group_name"]
        if not (identity.acts_for_anyone or owner in identity.groups):
            raise forbidden("users may only manage the credentials of their own groups")
    elif kind == "dataset":
        owner = match["dataset_id"]
    else:
        owner = f"{match['dataset_id']}/{match['task_name']}"
    return owner


async def _list(request: web.Request, kind: str) -> web.Response:
    owner = _owner(request, kind)
    query = request.query
    # IceProd refreshes what is about to expire while listing, unless asked not to (norefresh).
    buffer = request.app[SETTINGS].token_expire_buffer_minutes * 60
    refresh_before = None if query.get("norefresh", "").lower() in ("1", "true", "yes") else time.time() + buffer
    return json_reply(await service(request, LISTING_REFRESH_TIMEOUT).list(kind, [owner], url=query.get("url"),
                                                  transfer_prefix=query.get("transfer_prefix"),
                                                  scope=query.get("scope"), refresh_before=refresh_before))


async def _put(request: web.Request, kind: str, patch: bool) -> web.Response:
    owner = _owner(request, kind)
    body = await json_body(request)
    try:
        if patch:
            doc = await service(request).patch(kind, owner, body)
            if doc is None:
                raise not_found("no credential for that url")
        else:
            doc = await service(request).put(kind, owner, body)
    except CredentialInputError as exc:
        raise bad_request(str(exc)) from None
    except CipherError as exc:
        raise ApiError(409, f"{exc}; delete the credential and add it again") from None
    return json_reply(doc, status=200 if patch else 201)


async def _delete(request: web.Request, kind: str) -> web.Response:
    owner = _owner(request, kind)
    url = request.query.get("url")
    if url is None and request.can_read_body:
        body = await json_body(request, required=False)
        url = body.get("url") if isinstance(body, dict) and isinstance(body.get("url"), str) else None
    deleted = await request.app[STORE].delete_credentials(kind, owner, url)
    if url is not None and not deleted:
        raise not_found("no credential for that url")
    return json_reply({"deleted": deleted})


def _routes(kind: str, path: str, roles: set[str]) -> None:
    noun = {"user": "a user's", "group": "a group's", "dataset": "a dataset's", "task": "a dataset task's"}[kind]

    async def list_(request: web.Request) -> web.Response:
        return await _list(request, kind)

    async def post(request: web.Request) -> web.Response:
        return await _put(request, kind, patch=False)

    async def patch(request: web.Request) -> web.Response:
        return await _put(request, kind, patch=True)

    async def delete(request: web.Request) -> web.Response:
        return await _delete(request, kind)

    routes.get(path, summary=f"{noun} credentials (never their secrets)", roles=roles, query=LIST_QUERY,
               owner=kind if kind in ("user", "group") else None)(list_)
    routes.post(path, summary=f"add or replace one of {noun} credentials (by url)", roles=roles)(post)
    routes.patch(path, summary=f"change one of {noun} credentials (named by url)", roles=roles)(patch)
    routes.delete(path, summary=f"delete {noun} credentials (one with ?url=, else all)", roles=roles,
                  query=URL_QUERY)(delete)


_routes("user", "/users/{username}/credentials", ALL_ROLES)
_routes("group", "/groups/{group_name}/credentials", ALL_ROLES)
_routes("dataset", "/datasets/{dataset_id}/credentials", SERVICE_ROLES)
_routes("task", "/datasets/{dataset_id}/tasks/{task_name}/credentials", SERVICE_ROLES)
