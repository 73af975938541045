"""Loading the dataset schemas and choosing one by config version.

IceProd picks ``dataset_v{round(float(version), 1)}.schema.json``; integer
``3`` (the v2-era marker still found in old configs and in the tutorial)
made it look for a non-existent file and crash. frazil reads 3 as 3.1 and
refuses every other version with a ConfigError naming ``config['version']``.
"""
from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import math
import reprlib
from typing import Any

from jsonschema import Draft202012Validator

from .errors import ConfigError, format_path

SUPPORTED_VERSIONS: tuple[str, ...] = ("3.1", "3.2")
# The version fill_defaults assumes when a config has none: IceProd's
# ConfigSchema.schema() default, so a bare config gets version 3.1 filled in.
DEFAULT_FILL_VERSION = "3.1"
_ALIASES: dict[float, str] = {3.0: "3.1", 3.1: "3.1", 3.2: "3.2"}


def normalize_version(value: Any) -> str:
    """Map a version value (number or numeric string) to "3.1" or "3.2".

    Raises ConfigError naming ``config['version']`` for anything else,
    booleans included (``True == 1`` must not sneak through as a number).
    """
    path = format_path(["version"])
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number not in _ALIASES:
        raise ConfigError.at(
            path, f"unsupported config version {value!r} (supported: 3 (read as 3.1), 3.1, 3.2)")
    return _ALIASES[number]


def require_object(config: Any) -> None:
    """Refuse a config that is not a JSON object (before anything indexes it)."""
    if not isinstance(config, dict):
        raise ConfigError.at("config", f"{reprlib.repr(config)} is not of type 'object'")


def schema_version(config: Any) -> str:
    """The schema version ("3.1" or "3.2") a config is checked against."""
    require_object(config)
    if "version" not in config:
        raise ConfigError.at("config", "'version' is a required property")
    return normalize_version(config["version"])


@functools.cache
def _cached_schema(version: str) -> dict[str, Any]:
    text = (importlib.resources.files(__package__) / "schemas"
            / f"dataset_v{version}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def shared_schema(version: str | float | int) -> dict[str, Any]:
    """The cached schema object itself; internal callers must not mutate it."""
    return _cached_schema(normalize_version(version))


def load_schema(version: str | float | int = "3.2") -> dict[str, Any]:
    """A private copy of the schema for ``version`` (e.g. to serve or edit)."""
    return copy.deepcopy(shared_schema(version))


@functools.cache
def validator(version: str) -> Draft202012Validator:
    """One compiled validator per version; building it costs more than using it."""
    schema = _cached_schema(normalize_version(version))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
