"""Converting a 3.0/3.1 config to 3.2, as IceProd's submit does, without refusing old configs.

IceProd's submit action sets ``version`` to 3.2 before it validates and
stores a config, so configs that 3.1 accepted but 3.2 refuses (a
``job_temp`` entry with a ``remote``, a ``permanent`` one without,
``task_files`` without ``token_scopes``) are refused there. frazil does the
same conversion, and goes one step further for the keys that 3.2 simply no
longer has — ``projects`` on trays and modules, common in older IceCube
simulation configs, which 3.1 accepted as extra keys: those are dropped,
each with a warning naming it, instead of failing the submission. A key that
3.1 already refused stays, so the 3.2 check still reports it as the error it
always was.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from .errors import ConfigError, ConfigWarning, format_path
from .schema import DEFAULT_FILL_VERSION, normalize_version, validator
from .validation import path_sort_key

CURRENT = 3.2
MAX_ROUNDS = 8
"""Nested extra keys show up once their parent stays; configs nest only a few levels."""


def _extras(schema: dict[str, Any], instance: dict[str, Any]) -> set[str]:
    """Keys of ``instance`` that ``schema`` neither names nor matches with a pattern."""
    named = set(schema.get("properties") or {})
    patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
    return {key for key in instance if key not in named and not any(p.search(key) for p in patterns)}


def _refused(version: str, config: dict[str, Any]) -> set[tuple[tuple[Any, ...], str]]:
    """(path, key) of every extra key the schema of ``version`` refuses."""
    instance = {**config, "version": float(version)}
    found: set[tuple[tuple[Any, ...], str]] = set()
    for error in validator(version).iter_errors(instance):
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            where = tuple(error.absolute_path)
            found |= {(where, key) for key in _extras(error.schema, error.instance)}
    return found


def _at(config: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        config = config[part]
    return config


def upgrade_config(config: Any) -> tuple[Any, list[ConfigWarning]]:
    """``config`` converted to 3.2 (a copy) and a warning per key dropped on the way.

    A config without ``version`` is read as 3.1 (as IceProd's default filling
    does) and converted too. A 3.2 config, or one that is not an object or has
    an unreadable version, comes back as it is (the checks that follow report
    what is wrong with it).
    """
    if not isinstance(config, dict):
        return config, []
    if "version" not in config:
        # Without a version IceProd's defaults read a config as 3.1; converted like any 3.1 one.
        config = {**config, "version": DEFAULT_FILL_VERSION}
    try:
        version = normalize_version(config["version"])
    except ConfigError:
        return config, []
    if version != "3.1":
        return config, []
    already_refused = _refused("3.1", config)
    upgraded = copy.deepcopy(config)
    upgraded["version"] = CURRENT
    warnings: list[ConfigWarning] = []
    for _ in range(MAX_ROUNDS):
        dropped = False
        for (where, key) in sorted(_refused("3.2", upgraded) - already_refused,
                                   key=lambda found: (path_sort_key(found[0]), found[1])):
            target = _at(upgraded, where)
            if key in target:
                del target[key]
                dropped = True
                warnings.append(ConfigWarning(format_path([*where, key]), (
                    f"dropped {key!r}: config version 3.2 has no such key here (converted from version "
                    f"{config['version']!r} to 3.2)")))
        if not dropped:
            break
    return upgraded, warnings
