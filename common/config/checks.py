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

from common.batchsys import BatchsysError, checked
from common.resources import RequirementError, is_macro, parse_requirement

from .convert import upgrade_config
from .defaults import fill_defaults
from .depends import names_to_index, read_depends
from .errors import ConfigError, ConfigProblem, format_path
from .validation import schema_problems


def _tasks(config: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    tasks = config.get("tasks")
    if not isinstance(tasks, list):
        return []
    return [(i, task) for i, task in enumerate(tasks) if isinstance(task, dict)]


def _check_unique_names(tasks: list[Any]) -> Iterator[ConfigProblem]:
    first = names_to_index(tasks)
    for i, task in enumerate(tasks):
        name = task.get("name") if isinstance(task, dict) else None
        if isinstance(name, str) and first[name] != i:
            yield ConfigProblem(format_path(["tasks", i, "name"]),
                                f"duplicate task name {name!r} (task {first[name]} has the same name)")


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


def _check_depends(tasks: list[Any]) -> Iterator[ConfigProblem]:
    """Each entry read by :func:`depends.read_depends`, as materialization reads
    it; an edge to a later (or the same) task is reported as the cycle it
    closes, if it closes one. ``tasks``: the config's whole task list."""
    names = names_to_index(tasks)
    read = [(i, dep) for i in range(len(tasks)) for dep in read_depends(tasks, i, names)]
    graph: dict[int, list[int]] = {}
    for i, dep in read:
        if dep.task_index is not None:
            graph.setdefault(i, []).append(dep.task_index)
    for i, dep in read:
        message = dep.problem
        if dep.task_index is not None and message:
            back = _path_to(graph, dep.task_index, i)
            if back is not None:
                message = "dependency cycle: " + " -> ".join(str(tasks[k].get("name")) for k in [i, *back])
        if message:
            yield ConfigProblem(format_path(["tasks", i, "depends", dep.position]), message)


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


def _check_batchsys(config: dict[str, Any]) -> Iterator[ConfigProblem]:
    """``batchsys`` entries become pilot submit lines (common/batchsys.py): each must be one frazil can write."""
    steering = config.get("steering") if isinstance(config.get("steering"), dict) else {}
    places = [(["steering", "batchsys"], steering.get("batchsys"))]
    places += [(["tasks", i, "batchsys"], task.get("batchsys")) for i, task in _tasks(config)]
    for path, value in places:
        try:
            checked(value)
        except BatchsysError as exc:
            yield ConfigProblem(format_path(path), str(exc))


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
    every = config.get("tasks") if isinstance(config.get("tasks"), list) else []
    tasks = _tasks(config)
    problems: list[ConfigProblem] = [*_check_unique_names(every), *_check_depends(every), *_check_batchsys(config)]
    for check in (_check_requirements, _check_modules):
        problems.extend(check(tasks))
    return problems


def prepare_config(config: dict[str, Any]) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """The config converted to 3.2 (:func:`upgrade_config`), with defaults filled
    (once), and every problem it has.

    Defaults are filled on a copy first, then come all schema problems in
    document order, then frazil's extra checks. The filled config is what
    gets stored: readers later (materialization, the pilot) use it as is.
    Never raises for bad input: an unsupported version or a non-object config
    is a problem too (and the config then comes back unfilled).
    """
    config, _ = upgrade_config(config)  # 3.0/3.1 -> 3.2, as IceProd's submit; warnings: upgrade_config
    try:
        filled = fill_defaults(config)
        problems = schema_problems(filled)
    except ConfigError as err:
        problems = list(err.problems)
        if not isinstance(config, dict):
            return config, problems
        # Without a known version there is no schema to check against;
        # the version problem plus the structural checks still help.
        filled = copy.deepcopy(config)
        if "tasks" not in config:
            problems.append(ConfigProblem("config", "'tasks' is a required property"))
    problems.extend(extra_checks(filled))
    return filled, problems


def check_config(config: dict[str, Any]) -> list[ConfigProblem]:
    """Every problem of a user's config at once (:func:`prepare_config`); empty means usable."""
    return prepare_config(config)[1]
