"""Users, groups, roles and the remote rights check (reference §4.3 "Auth")."""
from __future__ import annotations

from aiohttp import web

from server.api.errors import ApiError, not_found
from server.api.params import json_reply
from server.api.routing import SERVICE_ROLES, ApiRoutes, caller
from server.auth import ROLES, Identity, allowed
from server.auth.revocation import revoke, token_subject, user_subject
from server.keys import BODY, STORE, TOKENS

routes = ApiRoutes("users")
ADMIN = {"admin"}
PRIORITY_BODY = {
    "type": "object",
    "properties": {"priority": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["priority"],
    "additionalProperties": False,
}


@routes.get("/roles", summary="the roles frazil knows", roles=ADMIN)
async def list_roles(request: web.Request) -> web.Response:
    return json_reply({"results": list(ROLES)})


@routes.get("/groups", summary="groups and their priorities", roles=SERVICE_ROLES)
async def list_groups(request: web.Request) -> web.Response:
    groups = await request.app[STORE].list_groups()
    return json_reply({"results": [{"name": g.name, "priority": g.priority} for g in groups]})


@routes.put("/groups/{group_name}", summary="create a group", roles=ADMIN,
            body={"type": "object", "properties": {"priority": {"type": "number", "minimum": 0, "maximum": 1}},
                  "additionalProperties": False})
async def create_group(request: web.Request) -> web.Response:
    group = await request.app[STORE].create_group(request.match_info["group_name"],
                                                  float(request[BODY].get("priority", 0.5)))
    return json_reply({"name": group.name, "priority": group.priority}, status=201)


@routes.put("/groups/{group_name}/priority", summary="set a group's priority (0..1)", roles=ADMIN, body=PRIORITY_BODY)
async def set_group_priority(request: web.Request) -> web.Response:
    if not await request.app[STORE].set_group_priority(request.match_info["group_name"], request[BODY]["priority"]):
        raise not_found("group not found")
    return json_reply({})


@routes.delete("/groups/{group_name}", summary="delete a group", roles=ADMIN)
async def delete_group(request: web.Request) -> web.Response:
    if not await request.app[STORE].delete_group(request.match_info["group_name"]):
        raise not_found("group not found")
    return json_reply({})


@routes.get("/users", summary="all users with their priorities", roles=SERVICE_ROLES)
async def list_users(request: web.Request) -> web.Response:
    users = await request.app[STORE].list_users()
    return json_reply({"results": [u.to_doc() for u in users]})


@routes.get("/users/{username}", summary="one user", roles=SERVICE_ROLES)
async def get_user(request: web.Request) -> web.Response:
    user = await request.app[STORE].get_user(request.match_info["username"])
    if user is None:
        raise not_found("user not found")
    return json_reply(user.to_doc())


@routes.put("/users/{username}", summary="create a user (priority 0.5); a deleted user's name is usable again",
            roles=ADMIN)
async def create_user(request: web.Request) -> web.Response:
    store, username = request.app[STORE], request.match_info["username"]
    user = await store.create_user(username)
    if any(r.subject == user_subject(username) and r.deleted for r in await store.list_revocations()):
        # re-created: new tokens work again; those from before stay revoked
        await revoke(store, request.app[TOKENS], user_subject(username), deleted=False)
    return json_reply(user.to_doc(), status=201)


@routes.delete("/users/{username}", summary="delete a user: every token of that name fails at once (401)",
               roles=ADMIN)
async def delete_user(request: web.Request) -> web.Response:
    """Tokens are minted without a user record, so the name is marked deleted
    (and its tokens revoked) whether or not the store has a record of it."""
    store, username = request.app[STORE], request.match_info["username"]
    await revoke(store, request.app[TOKENS], user_subject(username), deleted=True)
    existed = await store.delete_user(username)
    return json_reply({"deleted": existed, "revoked": True})


@routes.post("/users/{username}/revoke_tokens",
             summary="revoke the user's tokens issued until now (401 at once; new tokens work)", roles=ADMIN,
             body={"type": "object", "additionalProperties": False,
                   "properties": {"token_id": {"type": "string", "minLength": 1, "maxLength": 64}}})
async def revoke_tokens(request: web.Request) -> web.Response:
    """Body ``{"token_id": ID}`` revokes that one token instead."""
    store, token_id = request.app[STORE], request[BODY].get("token_id")
    subject = token_subject(token_id) if token_id else user_subject(request.match_info["username"])
    revocation = await revoke(store, request.app[TOKENS], subject)
    return json_reply({"subject": revocation.subject, "revoked_at": revocation.revoked_at})


@routes.put("/users/{username}/priority", summary="set a user's priority (0..1)", roles=ADMIN, body=PRIORITY_BODY)
async def set_user_priority(request: web.Request) -> web.Response:
    if not await request.app[STORE].set_user_priority(request.match_info["username"], request[BODY]["priority"]):
        raise not_found("user not found")
    return json_reply({})


AUTHS_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": ["dataset_id"]},
        "value": {"type": "string", "minLength": 1},
        "role": {"type": "string", "enum": ["read", "write"]},
        "username": {"type": "string", "minLength": 1},
        "groups": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "value", "role", "username"],
    "additionalProperties": False,
}


@routes.post("/auths", summary="would this user/groups have this right on a dataset? 200 {} or 403", roles=SERVICE_ROLES,
             body=AUTHS_BODY)
async def check_auth(request: web.Request) -> web.Response:
    body = request[BODY]
    caller(request)
    subject = Identity(username=body["username"], role="user", groups=frozenset(body.get("groups", [])))
    rights = (await request.app[STORE].rights_for([body["value"]])).get(body["value"])
    if rights is None:
        raise ApiError(403, "attr not found")
    if not allowed(subject, rights, body["role"]):
        raise ApiError(403, "authorization failed")
    return json_reply({})
