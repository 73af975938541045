"""Route definitions that carry their own contract.

Each handler is declared once with its roles, dataset right, body schema and
query parameters. From that one declaration come (1) the checks done before
the handler runs — authentication, role, pilot-token restriction, dataset
right, body validation — and (2) the OpenAPI document at
``/api/openapi.json``. So the documentation cannot drift from what the
server enforces.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import jsonschema
from aiohttp import web

from common.json_input import clip, shorten_message
from common.protocol import Reason
from common.wire import Message, ProtocolError, json_schema
from server.api.errors import ApiError, bad_request, forbidden
from server.api.params import json_body
from server.auth import Identity, may
from server.keys import BODY, IDENTITY, STORE
from server.scheduling.datasets import dataset_by_key

Handler = Callable[..., Awaitable[web.StreamResponse]]
ALL_ROLES = frozenset({"admin", "user", "system"})
"""Every role but ``pilot``: the default of a route (IceProd's A,U,S)."""
SERVICE_ROLES = frozenset({"admin", "system"})
"""IceProd's A,S routes (its services and cron tasks carry system tokens)."""
PILOT_ROLES = SERVICE_ROLES
"""Roles of the pilot routes besides ``pilot`` itself, which ``pilot=True`` adds:
``system`` stays allowed so IceProd-style pilots and scripts that carry a
system token keep working (docs/pilot-api.md)."""
ANONYMOUS = "anonymous"


@dataclass
class QueryParam:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: frozenset[str]
    right: str | None
    """"read" | "write": the caller needs this right on the path's ``dataset_id``."""
    pilot: bool
    """Pilot tokens may call it (``pilot`` is in ``roles``); they may call nothing else."""
    body: dict[str, Any] | None
    """The body's JSON Schema (OpenAPI)."""
    query: list[QueryParam]
    responses: dict[int, str]
    bootstrap: bool = False
    """A bootstrap pilot token (register-only) may call it: registration alone."""
    held_task: bool = False
    """The path's ``task_id`` must be held by the calling pilot token's pilot (its reports)."""
    owner: str | None = None
    """Routes that return user data without a dataset right say here who may
    read it ("user": the path's user, "group": a member of the path's group,
    "action": the requester, or readers of the dataset the action concerns,
    "anyone": no user's data, e.g. counts over everyone's);
    the handler enforces it. The authorization matrix tests every id-taking
    GET route against this declaration."""


class ApiRoutes:
    """A ``RouteTableDef`` that also records each route's contract."""

    def __init__(self, tag: str):
        self.tag = tag
        self.specs: list[RouteSpec] = []

    def route(self, method: str, path: str, *, summary: str, roles: frozenset[str] | set[str] = ALL_ROLES,
              right: str | None = None, pilot: bool = False,
              body: dict[str, Any] | type[Message] | None = None,
              query: list[QueryParam] | None = None, responses: dict[int, str] | None = None,
              owner: str | None = None, bootstrap: bool = False,
              held_task: bool = False) -> Callable[[Handler], Handler]:
        """``body``: a JSON Schema, or a protocol message (common.protocol) whose
        own parser checks the body (request[BODY] is then the parsed message)."""
        message = body if isinstance(body, type) and issubclass(body, Message) else None
        schema = json_schema(message) if message is not None else body

        def decorate(handler: Handler) -> Handler:
            spec = RouteSpec(method=method.upper(), path=path, handler=handler, summary=summary, tag=self.tag,
                             roles=frozenset(roles) | ({"pilot"} if pilot else set()), right=right, pilot=pilot, body=schema,  # type: ignore[arg-type]
                             query=query or [], responses=responses or {}, owner=owner, bootstrap=bootstrap,
                             held_task=held_task)
            validator = jsonschema.Draft202012Validator(schema) if schema is not None and message is None else None

            @functools.wraps(handler)
            async def guarded(request: web.Request) -> web.StreamResponse:
                identity = authorize(request, spec)
                # Pilots work for every dataset; on the pilot routes they may reach,
                # the dataset right is a user's matter.
                if spec.right and not (identity is not None and identity.is_pilot):
                    await require_right(request, identity, request.match_info["dataset_id"], spec.right)
                if message is not None:
                    try:
                        request[BODY] = message.parse(await json_body(request))
                    except ProtocolError as exc:
                        raise bad_request(str(exc)) from None
                elif validator is not None:
                    document = await json_body(request)
                    problem = first_problem(validator, document)
                    if problem:
                        raise bad_request(problem)
                    request[BODY] = document
                if identity is not None and identity.pilot_id is not None:
                    await check_bound_pilot(request, spec, identity)
                return await handler(request)

            spec.handler = guarded
            self.specs.append(spec)
            return guarded
        return decorate

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kwargs)

    def register(self, app: web.Application) -> None:
        for spec in self.specs:
            app.router.add_route(spec.method, spec.path, spec.handler)


def authorize(request: web.Request, spec: RouteSpec) -> Identity | None:
    identity: Identity | None = request.get(IDENTITY)
    if ANONYMOUS in spec.roles:
        return identity
    if identity is None:
        raise ApiError(401, "authentication required: send 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    if identity.is_pilot and "pilot" not in spec.roles:
        raise forbidden("pilot tokens may only use pilot routes")
    if identity.register_only and not spec.bootstrap:
        raise ApiError(403, "this pilot token may only register (POST /pilots); use the token the "
                       "registration answered", reason=Reason.REGISTER_ONLY)
    if identity.role not in spec.roles:
        raise forbidden("authorization failed")
    return identity


async def check_bound_pilot(request: web.Request, spec: RouteSpec, identity: Identity) -> None:
    """A registered pilot's token acts for its own pilot_id only: in the path,
    in the body, and for the tasks it reports on (those its pilot holds)."""
    named = request.match_info.get("pilot_id")
    body = request.get(BODY)
    if named is None:
        named = body.get("pilot_id") if isinstance(body, dict) else getattr(body, "pilot_id", None)
    if named is not None and named != identity.pilot_id:
        raise other_pilot(identity, f"pilot {clip(str(named))}")
    task_id = request.match_info.get("task_id")
    if spec.held_task and task_id is not None:
        task = await request.app[STORE].get_task(task_id)
        claim = body.get("instance_id") if isinstance(body, dict) else getattr(body, "instance_id", None)
        # a claim that no longer holds the task stays the handler's 409 (stale_instance);
        # the claim that holds it is its pilot's to report, whoever learnt its instance_id
        if task is not None and task.pilot_id and task.pilot_id != identity.pilot_id \
                and claim == task.instance_id:
            raise other_pilot(identity, f"task {clip(task_id)}, held by another pilot")


def other_pilot(identity: Identity, what: str) -> ApiError:
    return ApiError(403, f"this token is pilot {identity.pilot_id}'s: it cannot act for {what}",
                    reason=Reason.OTHER_PILOT)


def caller(request: web.Request) -> Identity:
    """The authenticated identity (routes without ``anonymous`` always have one)."""
    identity = request.get(IDENTITY)
    if identity is None:
        raise ApiError(401, "authentication required")
    return identity


async def require_right(request: web.Request, identity: Identity | None, dataset_id: str, right: str) -> None:
    """One rights lookup when allowed; when not, 404 for a dataset that does
    not exist (paths may also name it by number), else 403."""
    if identity is None:
        raise ApiError(401, "authentication required")
    store = request.app[STORE]
    if await may(store, identity, dataset_id, right):
        return
    dataset = await dataset_by_key(store, dataset_id)  # paths may name a dataset by number
    if dataset is None:
        raise ApiError(404, "Dataset not found")
    if dataset.dataset_id == dataset_id or not await may(store, identity, dataset.dataset_id, right):
        raise forbidden("authorization failed")


def first_problem(validator: jsonschema.Draft202012Validator, document: Any) -> str | None:
    """The first schema error, phrased with the field it concerns."""
    errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.path), list(map(str, e.path))))
    if not errors:
        return None
    error = errors[0]
    error.message = clip(shorten_message(error.message, error.instance))  # quotes values: never all of them
    where = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.path)
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        return f"missing key: {missing.group(1) if missing else error.message}" + (f" in body{where}" if where else "")
    if error.validator == "additionalProperties":
        return f"invalid keys found: {error.message}" + (f" in body{where}" if where else "")
    field_name = str(error.path[-1]) if error.path else "body"
    return f"key {field_name!r}: {error.message}" if error.path else f"body: {error.message}"


def openapi_document(specs: list[RouteSpec], *, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 from the route declarations."""
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        path = re.sub(r"{(\w+):[^}]*}", r"{\1}", spec.path)  # aiohttp's {name:regex} -> OpenAPI's {name}
        operation: dict[str, Any] = {
            "summary": spec.summary,
            "tags": [spec.tag],
            "operationId": f"{spec.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", path)
            ] + [
                {"name": q.name, "in": "query", "required": q.required, "description": q.description, "schema": q.schema}
                for q in spec.query
            ],
            "responses": {
                str(code): {"description": text}
                for code, text in {200: "success", 400: "bad input (the message names the field)",
                                   401: "no or invalid token", 403: "not allowed", 404: "not found",
                                   **spec.responses}.items()
            },
            "x-frazil-roles": sorted(spec.roles),
        }
        if ANONYMOUS not in spec.roles:
            operation["security"] = [{"bearer": []}]
        if spec.right:
            operation["x-frazil-dataset-right"] = spec.right
        if spec.owner:
            operation["x-frazil-owner"] = spec.owner
        if spec.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": spec.body}}}
        paths.setdefault(path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "frazil REST API", "version": version,
                 "description": "IceProd-compatible dataset production API plus frazil's pilot routes."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "paths": paths,
    }
