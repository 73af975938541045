"""What a task's ``depends`` entries name: the one reading, shared by the
submit-time checks (``checks.py``) and materialization.

An entry is either the ``name`` of a task of the same config (the same job
index), or ``"<dataset_id>:<task name or index>"`` for the task of the same
job index in another dataset. IceProd resolved these in two places with two
sets of rules; here one function decides and the two callers only differ in
what they do with a problem (report it with its path, or refuse to
materialize).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dependency:
    """One ``depends`` entry, read."""

    entry: str
    position: int
    """Where the entry is in the task's ``depends`` list."""
    task_index: int | None = None
    """Index of the task of the same config it names (None: another dataset)."""
    dataset_id: str | None = None
    """The other dataset, for ``"<dataset_id>:<task>"``."""
    ref: str = ""
    """The other dataset's task name or index (resolved with :func:`resolve_ref`)."""
    problem: str = ""
    """Why the entry names nothing (empty when it is fine)."""


def names_to_index(tasks: list[Any]) -> dict[str, int]:
    """The first index of each task name (a later duplicate is the checks' to report)."""
    index: dict[str, int] = {}
    for i, task in enumerate(tasks):
        name = task.get("name") if isinstance(task, dict) else None
        if isinstance(name, str):
            index.setdefault(name, i)
    return index


def read_depends(tasks: list[Any], task_index: int, names: dict[str, int] | None = None) -> list[Dependency]:
    """The ``depends`` entries of ``tasks[task_index]`` that are strings, read.

    A same-config entry must name a task listed BEFORE this one (a later or
    the same task is a problem: it would never be released, or closes a
    cycle, which :func:`common.config.checks` tells apart for its message).
    """
    task = tasks[task_index] if isinstance(tasks[task_index], dict) else {}
    depends = task.get("depends")
    if not isinstance(depends, list):
        return []
    names = names_to_index(tasks) if names is None else names
    out = []
    for position, entry in enumerate(depends):
        if not isinstance(entry, str):
            continue  # a type error: the schema reports it
        if entry in names:
            target = names[entry]
            problem = "" if target < task_index else (
                f"depends on a later task {entry!r} (task {target}); a task may only depend on tasks listed before it")
            out.append(Dependency(entry, position, task_index=target, problem=problem))
            continue
        dataset_id, sep, ref = entry.partition(":")
        if not sep:
            out.append(Dependency(entry, position, problem=f"depends on unknown task {entry!r}"))
        elif not dataset_id.strip() or not ref.strip():
            out.append(Dependency(entry, position, problem=f"malformed cross-dataset dependency {entry!r} "
                                                 "(expected '<dataset_id>:<task name or index>')"))
        else:
            out.append(Dependency(entry, position, dataset_id=dataset_id, ref=ref))
    return out


def resolve_ref(tasks: list[Any], ref: str) -> int | None:
    """Index of the task ``ref`` (a name, else a task index) in another dataset's config."""
    names = names_to_index(tasks)
    if ref in names:
        return names[ref]
    if ref.isdigit() and int(ref) < len(tasks):
        return int(ref)
    return None
