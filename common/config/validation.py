"""Schema validation with IceProd's error text.

IceProd runs ``jsonschema.validate`` (which reports
``best_match(iter_errors(...))``) and turns the error into
``Validation error in config<path>: <msg>``, where ``<msg>`` is the failing
subschema's ``error_msg`` keyword when it has one, else the first line of
the jsonschema message. frazil does the same, with one deliberate fix: the
path is the error's *absolute* path. IceProd used the relative one, which
is wrong when best_match descends into an ``anyOf`` branch (it printed
``config[1]`` for ``args: ["a", 5]``).
"""
from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from common.json_input import clip, shorten_message

from .errors import ConfigError, ConfigProblem, format_path
from .schema import schema_version, validator


def _instance(config: Any) -> tuple[str, Any]:
    """The version to check against and the instance to check.

    IceProd converts a string version to a float (in place) before
    validating; here a shallow copy carries the float so the caller's dict
    is untouched.
    """
    version = schema_version(config)
    if isinstance(config["version"], str):
        return version, {**config, "version": float(config["version"])}
    return version, config


def _message(error: ValidationError) -> str:
    schema = error.schema
    if isinstance(schema, dict) and isinstance(schema.get("error_msg"), str):
        return schema["error_msg"]
    # jsonschema quotes the value ("'xxx…' is too long"): a short prefix of it only
    return clip(shorten_message(error.message, error.instance).split("\n", 1)[0])


def problem_from_error(error: ValidationError) -> ConfigProblem:
    """Translate one jsonschema error into frazil's (IceProd's) wording."""
    return ConfigProblem(format_path(error.absolute_path), _message(error))


def path_sort_key(parts: tuple[str | int, ...]) -> tuple[tuple[int, str | int], ...]:
    """Order paths document-wise: indexes numerically, and never compare int with str."""
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in parts)


def schema_problems(config: Any) -> list[ConfigProblem]:
    """Every schema problem, one per JSON path, in document order.

    Several keywords can fail at one spot (``transfer: 2.5`` fails both
    ``anyOf`` and ``enum``); the one reported is the one best_match, and so
    ``validate``, would pick, so the two functions always agree.
    """
    version, instance = _instance(config)
    groups: dict[tuple[str | int, ...], list[ValidationError]] = {}
    for error in validator(version).iter_errors(instance):
        groups.setdefault(tuple(error.absolute_path), []).append(error)
    chosen: dict[ConfigProblem, tuple[str | int, ...]] = {}
    for errors in groups.values():
        best = best_match(errors)
        if best is not None:
            chosen.setdefault(problem_from_error(best), tuple(best.absolute_path))
    return sorted(chosen, key=lambda problem: path_sort_key(chosen[problem]))


def validate(config: dict[str, Any]) -> None:
    """Raise ConfigError for the problem IceProd's validate would report.

    Validates as given: call ``fill_defaults`` first, as IceProd's submit
    does, or defaults such as ``remote: ""`` are not there to be checked.
    """
    version, instance = _instance(config)
    error = best_match(validator(version).iter_errors(instance))
    if error is not None:
        raise ConfigError([problem_from_error(error)])
