"""A task's ``batchsys`` overrides (IceProd's ``{"condor": {"key": value}}``) and the pilot group
they make (issue 14 item 4).

frazil runs tasks in pilots, so a task's submit lines become the submit lines
of the pilots that serve it. Tasks with the same overrides share a *group*
(``batchsys-`` + a hash of the canonical overrides); the group's pilots are
started with ``--group`` and claim only tasks of their group, and tasks of a
group are claimed only by its pilots (an accounting group must hold for every
minute of the task).

In the claim the group travels in the ``os`` words, so no index changes: a
group task's OS words are ``GROUP/OS`` (or ``GROUP`` alone when it names no
OS), and a group pilot advertises ``GROUP/`` before each of its words plus
``GROUP``; the store refuses tasks with no OS words to a group pilot.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping, Sequence

GROUP_PREFIX = "batchsys-"
SYSTEMS = ("condor", "slurm")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")
_SLURM_KEY = re.compile(r"^--[a-z][a-z0-9-]{0,63}$")
_GROUP = re.compile(r"^batchsys-[0-9a-f]{16}$")
_SLURM_VALUE = re.compile(r"^[A-Za-z0-9_.:,@=+%/-]{1,200}$")
"""What an #SBATCH value may hold (the line is read by sbatch and the shell never sees it; still, no spaces)."""
RESERVED = ("frazil", "singularityimage")
"""Attribute names (lower case prefixes) frazil sets on its pilots itself."""


class BatchsysError(ValueError):
    """A ``batchsys`` entry frazil will not write into a submit description."""


def checked(raw: Any) -> dict[str, dict[str, Any]]:
    """The overrides frazil uses: ``condor`` (``+key = value`` lines; a ``requirements`` key is
    AND-ed) and ``slurm`` (``--option: value`` → ``#SBATCH --option=value``); other batch
    systems are IceProd's and ignored. Raises BatchsysError naming the entry."""
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, Mapping):
        raise BatchsysError(f"batchsys must be an object of objects, got {raw!r}")
    out: dict[str, dict[str, Any]] = {}
    for system in SYSTEMS:
        entries = raw.get(system)
        if entries in (None, {}):
            continue
        if not isinstance(entries, Mapping):
            raise BatchsysError(f"batchsys.{system} must be an object, got {entries!r}")
        clean: dict[str, Any] = {}
        for key, value in entries.items():
            name = key[1:] if system == "condor" and isinstance(key, str) and key.startswith("+") else key
            pattern = _KEY if system == "condor" else _SLURM_KEY
            if not isinstance(name, str) or not pattern.match(name):
                hint = "an attribute name such as +AccountingGroup" if system == "condor" else "an option such as --account"
                raise BatchsysError(f"batchsys.{system}: key {key!r} is not {hint}")
            if system == "condor" and name.lower().startswith(RESERVED):
                raise BatchsysError(f"batchsys.condor.{key}: frazil sets this attribute on its pilots itself")
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or \
                    (isinstance(value, str) and ("\n" in value or "\r" in value or len(value) > 1000)):
                raise BatchsysError(f"batchsys.{system}.{key}: expected a one-line string or a number, got {value!r}")
            if system == "slurm" and not _SLURM_VALUE.match(str(value)):
                raise BatchsysError(f"batchsys.slurm.{key}: {value!r} may hold only letters, digits and _.:,@=+%/-")
            clean[name] = value
        out[system] = clean
    return out


def merged(steering: Any, task: Any) -> Any:
    """A task's overrides over the config's ``steering.batchsys`` (per batch system, the task's
    keys win); anything that is not an object is handed on for :func:`checked` to name."""
    if not steering:
        return task
    if not task:
        return steering
    if not isinstance(steering, Mapping) or not isinstance(task, Mapping):
        return task if not isinstance(task, Mapping) else steering
    out = dict(steering)
    for system, entries in task.items():
        below = steering.get(system)
        out[system] = {**below, **entries} if isinstance(below, Mapping) and isinstance(entries, Mapping) else entries
    return out


def group_of(batchsys: Mapping[str, Any] | None) -> str:
    """The pilot group of checked overrides ('' for none)."""
    if not batchsys:
        return ""
    text = json.dumps(batchsys, sort_keys=True, separators=(",", ":"))
    return GROUP_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def is_group(name: str) -> bool:
    return bool(_GROUP.match(name))


def task_words(group: str, os_words: Sequence[str]) -> tuple[str, ...]:
    """A task's claim words: its OS words, with the group in front when it has one."""
    if not group:
        return tuple(os_words)
    return tuple(f"{group}/{word}" for word in os_words) or (group,)


def pilot_words(group: str, os_words: Sequence[str]) -> list[str]:
    """A pilot's claim words: its OS words, with its group in front and the bare group when it has one."""
    if not group:
        return list(os_words)
    return [f"{group}/{word}" for word in os_words] + [group]


def split_words(words: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """(group, OS words) of a class's claim words (the inverse of :func:`task_words`)."""
    if words and is_group(words[0].split("/", 1)[0]):
        group = words[0].split("/", 1)[0]
        return group, tuple(w.split("/", 1)[1] for w in words if "/" in w)
    return "", tuple(words)


def condor_lines(batchsys: Mapping[str, Any] | None) -> tuple[list[str], str]:
    """(``+key = value`` lines, requirements to AND) of checked overrides."""
    lines, requirements = [], ""
    for key, value in sorted(((batchsys or {}).get("condor") or {}).items()):
        if key.lower() == "requirements":
            requirements = str(value)
        else:
            lines.append(f"+{key} = {value}")
    return lines, requirements


def slurm_lines(batchsys: Mapping[str, Any] | None) -> list[str]:
    """``#SBATCH --option=value`` lines of checked overrides."""
    return [f"#SBATCH {key}={value}" for key, value in sorted(((batchsys or {}).get("slurm") or {}).items())]
