"""frazil's checks beyond the schema, and ``check_config`` that runs them all.

IceProd accepted configs that could only fail later, at materialization or
inside the job: duplicate task names, dependencies on unknown or later
tasks, cycles, zero or negative resources, modules with nothing to run.
DESIGN.md §3.3 asks that a config which would fail at run time fail at
submit time, so these are reported together with the schema problems.
Every check tolerates values of the wrong type (the schema reports those),
so check_config never raises on malformed input.
"""
from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterator
from typing import Any

from common.resources import RequirementError, is_macro, parse_requirement

from .defaults import fill_defaults
from .errors import ConfigError, ConfigProblem, format_path
from .validation import schema_problems



def _tasks(config: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    tasks = config.get("tasks")
    if not isinstance(tasks, list):
        return []
    return [(i, task) for i, task in enumerate(tasks) if isinstance(task, dict)]


def _first_index_by_name(tasks: list[tuple[int, dict[str, Any]]]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, task in tasks:
        name = task.get("name")
        if isinstance(name, str):
            index.setdefault(name, i)
    return index


def _check_unique_names(tasks: list[tuple[int, dict[str, Any]]]) -> Iterator[ConfigProblem]:
    first = _first_index_by_name(tasks)
    for i, task in tasks:
        name = task.get("name")
        if isinstance(name, str) and first[name] != i:
            yield ConfigProblem(format_path(["tasks", i, "name"]),
                                f"duplicate task name {name!r} (task {first[name]} has the same name)")


def _depends(task: dict[str, Any]) -> list[tuple[int, str]]:
    depends = task.get("depends")
    if not isinstance(depends, list):
        return []
    return [(j, dep) for j, dep in enumerate(depends) if isinstance(dep, str)]


def _path_to(graph: dict[int, list[int]], start: int, goal: int) -> list[int] | None:
    """Shortest list of task indexes start..goal along depends edges, if any."""
    previous: dict[int, int | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while (before := previous[path[-1]]) is not None:
                path.append(before)
            return path[::-1]
        for nxt in graph.get(node, []):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def _check_depends(tasks: list[tuple[int, dict[str, Any]]]) -> Iterator[ConfigProblem]:
    index = _first_index_by_name(tasks)
    names = {i: task.get("name") for i, task in tasks}
    graph: dict[int, list[int]] = {}
    later: list[tuple[int, int, int, str]] = []
    found: dict[tuple[int, int], ConfigProblem] = {}
    for i, task in tasks:
        for j, dep in _depends(task):
            path = format_path(["tasks", i, "depends", j])
            if dep in index:
                graph.setdefault(i, []).append(index[dep])
                if index[dep] >= i:
                    later.append((i, j, index[dep], dep))
            elif ":" in dep:
                dataset_id, _, ref = dep.partition(":")
                if not dataset_id.strip() or not ref.strip():
                    found[i, j] = ConfigProblem(path, f"malformed cross-dataset dependency {dep!r} "
                                                      "(expected '<dataset_id>:<task name or index>')")
            else:
                found[i, j] = ConfigProblem(path, f"depends on unknown task {dep!r}")
    # Only an edge to a later (or the same) task can close a cycle, so
    # checking each of those finds every cycle, reported where it closes.
    for i, j, target, dep in later:
        path = format_path(["tasks", i, "depends", j])
        back = _path_to(graph, target, i)
        if back is not None:
            chain = " -> ".join(str(names[k]) for k in [i, *back])
            found[i, j] = ConfigProblem(path, f"dependency cycle: {chain}")
        else:
            found[i, j] = ConfigProblem(path, f"depends on a later task {dep!r} (task {target}); "
                                              "a task may only depend on tasks listed before it")
    for key in sorted(found):
        yield found[key]


# The types the schema allows per resource; a value of another type is the
# schema's to report (once), so only these reach the requirement parser.
_SCHEMA_TYPES: dict[str, tuple[type, ...]] = {"cpu": (int,), "gpu": (int,), "memory": (int, float, str),
                                              "disk": (int, float, str), "time": (int, float, str)}


def _check_requirements(tasks: list[tuple[int, dict[str, Any]]]) -> Iterator[ConfigProblem]:
    """Every resource value must read with the one requirement parser
    (``common.resources``); a macro string is checked once expanded, when
    the submission's tasks are planned for their first and last job."""
    for i, task in tasks:
        req = task.get("requirements")
        if not isinstance(req, dict):
            continue
        for key, kinds in _SCHEMA_TYPES.items():
            value = req.get(key)
            if isinstance(value, bool) or not isinstance(value, kinds) or is_macro(value):
                continue
            try:
                parse_requirement(key, value)
            except RequirementError as exc:
                yield ConfigProblem(format_path(["tasks", i, "requirements", key]), f"{key}: {exc.message}")


def _modules(task: dict[str, Any]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    trays = task.get("trays")
    for t, tray in enumerate(trays if isinstance(trays, list) else []):
        modules = tray.get("modules") if isinstance(tray, dict) else None
        for m, module in enumerate(modules if isinstance(modules, list) else []):
            if isinstance(module, dict):
                yield t, m, module


def _check_modules(tasks: list[tuple[int, dict[str, Any]]]) -> Iterator[ConfigProblem]:
    for i, task in tasks:
        for t, m, module in _modules(task):
            src, legacy = module.get("src"), module.get("running_class")
            if src is not None and not isinstance(src, str):
                continue  # a type error the schema reports
            if not (src or "").strip() and not (isinstance(legacy, str) and legacy.strip()):
                yield ConfigProblem(format_path(["tasks", i, "trays", t, "modules", m]),
                                    "module needs 'src' (or legacy 'running_class')")


def extra_checks(config: dict[str, Any]) -> list[ConfigProblem]:
    """frazil's checks on a (preferably default-filled) config, in check order."""
    tasks = _tasks(config)
    problems: list[ConfigProblem] = []
    for check in (_check_unique_names, _check_depends, _check_requirements, _check_modules):
        problems.extend(check(tasks))
    return problems


def check_config(config: dict[str, Any]) -> list[ConfigProblem]:
    """Every problem of a user's config at once; an empty list means usable.

    Defaults are filled on a copy first (as on submit), then come all schema
    problems in document order, then frazil's extra checks. Never raises for
    bad input: an unsupported version or a non-object config is a problem too.
    """
    try:
        filled = fill_defaults(config)
        problems = schema_problems(filled)
    except ConfigError as err:
        problems = list(err.problems)
        if not isinstance(config, dict):
            return problems
        # Without a known version there is no schema to check against;
        # the version problem plus the structural checks still help.
        filled = copy.deepcopy(config)
        if "tasks" not in config:
            problems.append(ConfigProblem("config", "'tasks' is a required property"))
    problems.extend(extra_checks(filled))
    return problems
