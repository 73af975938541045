"""Submit page, config view/edit with version diffs, JSON schemas
(reference §8 ``/submit``, ``/config?dataset_id=&edit=``, ``/schemas/v3/...``).

Submission and edits are checked by the actions' own ``prepare`` (the same
call as ``POST /actions/submit``), once per request, so the website accepts
exactly what the REST action accepts. Only a form with other errors, which
is not queued, has its config checked on its own
(``common.plan.check_submission``). Problems are shown next to their field
path instead of as one error string.
"""
from __future__ import annotations

import difflib
import importlib.resources
import json
from typing import Any, Sequence

from aiohttp import web

from common import json_input
from common.config import ConfigProblem
from server.errors import ActionInputError
from server.keys import CONFIG_POOL, SETTINGS, STORE
from server.scheduling.config_pool import ConfigWorkTimeout, run_config_work
from server.scheduling.config_work import check_submitted
from server.web.json_lines import line_of, pretty_with_lines
from server.store import ActionMessage
from server.web.framework import (
    PageError, PageRoutes, dataset_for, form_data, queue_action, render, session_of,
)

routes = PageRoutes()
SKELETON = {"version": 3.2, "description": "", "tasks": [
    {"name": "generate", "requirements": {"cpu": 1, "memory": 1.0},
     "trays": [{"modules": [{"src": "generate.py", "args": "--seed $(job)"}]}]}]}
SCHEMAS = {"dataset.schema.json": "dataset_v3.2.schema.json", "dataset_v3.1.schema.json": "dataset_v3.1.schema.json",
           "dataset_v3.2.schema.json": "dataset_v3.2.schema.json"}


def _parse_config(text: str, errors: dict[str, str]) -> dict[str, Any] | None:
    try:
        config = json_input.loads(text, what="the config")
    except json_input.JsonInputError as exc:
        errors["config"] = str(exc)
        return None
    if not isinstance(config, dict):
        errors["config"] = f"the config must be a JSON object, got {type(config).__name__}"
        return None
    config.setdefault("version", 3.2)
    return config


Problem = tuple[str, str, int | None]
"""(field path, message, line of the field in the re-formatted config)."""


async def _problems(request: web.Request, text: str, config: dict[str, Any],
                    jobs: int) -> tuple[str | None, list[Problem]]:
    """Check the config alone (when the form has other errors, so nothing is
    queued), in the config pool: its problems, with the line of each field."""
    try:
        checked = await run_config_work(request.app.get(CONFIG_POOL), check_submitted, text, jobs, 1, "",
                                        request.app[SETTINGS].config_check_seconds, False)
    except ConfigWorkTimeout as exc:
        return None, [("config", str(exc), None)]
    return _with_lines(config, checked.problems)


def _with_lines(config: dict[str, Any], found: Sequence[ConfigProblem]) -> tuple[str | None, list[Problem]]:
    """The problems with the line of each field; when there are any, the config
    comes back re-formatted (that is the text the lines refer to)."""
    if not found:
        return None, []
    text, where = pretty_with_lines(config)
    return text, [(p.path, p.message, line_of(p.path, where)) for p in found]


async def _queue(request: web.Request, action: str, payload: dict[str, Any], config: dict[str, Any],
                 errors: dict[str, str]) -> tuple[ActionMessage | None, str | None, list[Problem]]:
    """Queue ``action`` through its own ``prepare``, which checks the config
    (once: the page does not check it again); a refusal becomes the page's
    errors, config problems with their lines."""
    try:
        return await queue_action(request, action, payload), None, []
    except ActionInputError as exc:
        if exc.problems:
            return (None, *_with_lines(config, exc.problems))
        errors["form"] = str(exc)
    except (ValueError, PermissionError) as exc:
        errors["form"] = str(exc)
    return None, None, []


@routes.page("/submit")
async def submit_form(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    return render(request, "submit.html", config_text=json.dumps(SKELETON, indent=2), description="", jobs="10",
                  group=session.groups[0] if session.groups else "users", groups=session.groups, errors={},
                  problems=[])


@routes.page("/submit", method="POST")
async def submit_post(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    form = await form_data(request)
    text, description = form.get("config", ""), form.get("description", "")
    raw_jobs, group = form.get("jobs_submitted", ""), form.get("group", "users")
    errors: dict[str, str] = {}
    problems: list[Problem] = []
    digits = raw_jobs.strip()
    jobs = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 9 else 0
    if jobs < 1:
        errors["jobs_submitted"] = f"number of jobs must be a whole number >= 1, got {raw_jobs!r}"
    if not session.is_admin and group not in session.groups:
        errors["group"] = f"{group!r} is not one of your groups ({', '.join(session.groups) or 'none'})"
    config = _parse_config(text, errors)
    if config is not None and not errors:
        payload: dict[str, Any] = {"config": text, "jobs_submitted": jobs, "group": group}
        if description.strip():  # else the config's own description, as the submit action does
            payload["description"] = description
        message, pretty, problems = await _queue(request, "submit", payload, config, errors)
        if message is not None:
            raise web.HTTPSeeOther(f"/submit/status/{message.message_id}")
        text = pretty or text
    elif config is not None and jobs >= 1:
        pretty, problems = await _problems(request, text, config, jobs)
        text = pretty or text
    return render(request, "submit.html", status=400, config_text=text, description=description, jobs=raw_jobs,
                  group=group, groups=session.groups, errors=errors, problems=problems)


async def _own_message(request: web.Request, action: str) -> ActionMessage:
    session = session_of(request)
    message = await request.app[STORE].get_action(request.match_info["message_id"])
    if message is None or message.action != action or (
            not session.is_admin and message.payload.get("username") != session.username):
        raise PageError(404, "no such request")
    return message


@routes.page("/submit/status/{message_id}")
async def submit_status(request: web.Request) -> web.StreamResponse:
    """Follows the submit request; without JavaScript too (meta refresh)."""
    message = await _own_message(request, "submit")
    if message.status == "complete" and message.payload.get("dataset_id"):
        raise web.HTTPSeeOther(f"/dataset/{message.payload['dataset_id']}")
    return render(request, "action_status.html", message=message, what="Submission")


@routes.page("/config/status/{message_id}")
async def config_status(request: web.Request) -> web.StreamResponse:
    message = await _own_message(request, "edit_config")
    if message.status == "complete":
        raise web.HTTPSeeOther(f"/config?dataset_id={message.payload['dataset_id']}")
    return render(request, "action_status.html", message=message, what="Config edit")


def config_diff(old: dict[str, Any], new: dict[str, Any], old_name: str, new_name: str) -> list[tuple[str, str]]:
    """A unified diff of the pretty-printed configs, as (kind, line) for colouring."""
    a = json.dumps(old, indent=2, sort_keys=True).splitlines()
    b = json.dumps(new, indent=2, sort_keys=True).splitlines()
    out = []
    for line in difflib.unified_diff(a, b, old_name, new_name, lineterm="", n=3):
        kind = "hunk" if line.startswith("@@") else "file" if line[:3] in ("---", "+++") else \
            "add" if line.startswith("+") else "del" if line.startswith("-") else "same"
        out.append((kind, line))
    return out


def _version(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise PageError(400, f"{name!r} must be a config version number, got {raw!r}")
    return int(raw)


@routes.page("/config")
async def config_page(request: web.Request) -> web.StreamResponse:
    key = request.query.get("dataset_id", "")
    if not key:
        raise PageError(400, "missing dataset_id (e.g. /config?dataset_id=1)")
    edit = request.query.get("edit", "0") not in ("0", "", "false")
    dataset = await dataset_for(request, key, "write" if edit else "read")
    store = request.app[STORE]
    versions = await store.list_config_versions(dataset.dataset_id)
    by_number = {v.version: v for v in versions}
    a, b = _version(request, "a"), _version(request, "b")
    diff = None
    if a is not None and b is not None:
        if a not in by_number or b not in by_number:
            raise PageError(404, f"dataset {dataset.dataset} has no config version {a if a not in by_number else b}")
        diff = config_diff(by_number[a].config, by_number[b].config, f"version {a}", f"version {b}")
    wanted = _version(request, "version")
    current = by_number.get(wanted) if wanted is not None else (versions[-1] if versions else None)
    if wanted is not None and current is None:
        raise PageError(404, f"dataset {dataset.dataset} has no config version {wanted}")
    text = json.dumps(current.config, indent=2) if current else "{}"
    return render(request, "config.html", dataset=dataset, versions=versions, current=current, text=text,
                  edit=edit, diff=diff, a=a, b=b, errors={}, problems=[], description=dataset.description,
                  comment="")


@routes.page("/config", method="POST")
async def config_edit(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    dataset = await dataset_for(request, form.get("dataset_id", ""), "write")
    text, description, comment = form.get("config", ""), form.get("description", ""), form.get("comment", "")
    errors: dict[str, str] = {}
    problems: list[Problem] = []
    config = _parse_config(text, errors)
    if config is not None:
        message, pretty, problems = await _queue(request, "edit_config", {
            "dataset_id": dataset.dataset_id, "config": text, "description": description,
            "comment": comment or "edited on the website"}, config, errors)
        if message is not None:
            raise web.HTTPSeeOther(f"/config/status/{message.message_id}")
        text = pretty or text
    versions = await request.app[STORE].list_config_versions(dataset.dataset_id)
    return render(request, "config.html", status=400, dataset=dataset, versions=versions,
                  current=versions[-1] if versions else None, text=text, edit=True, diff=None, a=None, b=None,
                  errors=errors, problems=problems, description=description, comment=comment)


@routes.page("/schemas/v3/{name}", login=False)
async def schema(request: web.Request) -> web.StreamResponse:
    name = SCHEMAS.get(request.match_info["name"])
    if name is None:
        raise PageError(404, f"no schema {request.match_info['name']!r}; schemas: {', '.join(SCHEMAS)}")
    text = (importlib.resources.files("common.config") / "schemas" / name).read_text()
    return web.Response(text=text, content_type="application/json")
