"""Storage scopes a task needs, worked out at submit (IceProd's TokenSubmitter.token_scopes).

Every permanent data entry of a task (task, tray and module level) whose
remote — macros expanded with what is known at submit — lies in the storage
namespace (``osdf:///<namespace>/...`` or ``pelican://<host>/<namespace>/...``)
adds ``storage.read:<dir>`` (input) or ``storage.modify:<dir>`` and
``storage.read:<dir>`` (output, both: frazil reads uploads back), ``<dir>`` relative to the namespace and cut as IceProd cuts it: at the
first unexpanded ``$``, at a ``NNNN-NNNN`` job-range directory, or after the
``[01]ddd`` date directory of ``/IceCube/20xx/filtered/...``; otherwise the
file's directory. Scopes the config lists in ``token_scopes`` (without a
``$``) are added. The sorted, space-joined string is written back into each
task's ``token_scopes`` under the namespace URL.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any, Iterator
from urllib.parse import urlsplit

from common.macros import expand, expand_scope

JOB_RANGE = re.compile(r"/\d+-\d+(?=/|$)")
FILTERED_DATE = re.compile(r"^(.*/IceCube/20\d\d/filtered/.*?/[01]\d\d\d)(?=/|$)")


def _entries(task: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(data entry, the parameter scopes around it, outermost first)."""
    for entry in task.get("data") or []:
        yield entry, [task]
    for tray in task.get("trays") or []:
        for entry in tray.get("data") or []:
            yield entry, [task, tray]
        for module in tray.get("modules") or []:
            for entry in module.get("data") or []:
                yield entry, [task, tray, module]


def namespace_path(url: str, namespace: str) -> str | None:
    """The path of ``url`` inside the storage namespace, or None when it lies elsewhere."""
    parts = urlsplit(url)
    if parts.scheme not in ("osdf", "pelican"):
        return None
    path = parts.path if parts.scheme == "pelican" or not parts.netloc else f"/{parts.netloc}{parts.path}"
    path = "/" + "/".join(p for p in path.split("/") if p)
    prefix = namespace.rstrip("/")
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return path[len(prefix):] or "/"


def scope_dir(path: str) -> str:
    """IceProd's cut of an object path to the directory a scope names."""
    if "$" in path:
        return path[:path.index("$")].rsplit("/", 1)[0] or "/"
    found = JOB_RANGE.search(path)
    if found:
        return path[:found.start()] or "/"
    dated = FILTERED_DATE.match(path)
    if dated:
        return dated.group(1)
    return posixpath.dirname(path) or "/"


def entry_scopes(movement: str, inside: str) -> set[str]:
    """``storage.read`` for an input; ``storage.modify`` for an output — and ``storage.read``
    too, as frazil reads every upload back from the origin to verify it (IceProd does not)."""
    directory = scope_dir(inside)
    if movement == "input":
        return {f"storage.read:{directory}"}
    return {f"storage.modify:{directory}", f"storage.read:{directory}"}


def task_scopes(config: dict[str, Any], task: dict[str, Any], namespace: str, jobs_submitted: int) -> str:
    """The sorted, space-joined scopes one task needs."""
    options = {**(config.get("options") or {}), "jobs_submitted": jobs_submitted, "task": task.get("name", "")}
    view = {**config, "options": options}
    steering = expand_scope((config.get("steering") or {}).get("parameters"), outer=None, config=view)
    scopes: set[str] = set()
    for entry, around in _entries(task):
        if not isinstance(entry, dict) or entry.get("type", "permanent") != "permanent":
            continue
        parameters = steering
        for scope in around:
            parameters = expand_scope(scope.get("parameters"), outer=parameters, config=view)
        remote = expand(entry.get("remote", ""), config=view, parameters=parameters)
        inside = namespace_path(remote, namespace) if isinstance(remote, str) else None
        if inside is None:
            continue
        scopes.update(entry_scopes(entry.get("movement", "input"), inside))
    for value in (task.get("token_scopes") or {}).values():
        if isinstance(value, str):
            scopes.update(s for s in value.split() if "$" not in s)
    return " ".join(sorted(scopes))


def add_token_scopes(config: dict[str, Any], namespace: str, jobs_submitted: int) -> dict[str, Any]:
    """The config with each task's scopes written into its ``token_scopes`` (a new dict)."""
    key = f"osdf://{namespace.rstrip('/')}"
    tasks = []
    for task in config.get("tasks") or []:
        if not isinstance(task, dict):
            tasks.append(task)
            continue
        scopes = task_scopes(config, task, namespace, jobs_submitted)
        existing = {k: v for k, v in (task.get("token_scopes") or {}).items() if k != key}
        tasks.append({**task, "token_scopes": {**existing, key: scopes}} if scopes else task)
    return {**config, "tasks": tasks}
