"""Default filling, walking the schema the way IceProd's fill_defaults does.

For every object the schema describes, each property that has a ``default``
and is missing in the user's object gets a deep copy of that default; then
every present property whose value has the type the schema expects
(object / array of objects) is filled recursively, following ``$ref``.
Values of the wrong type are left alone for validation to report, so
filling never fails on a malformed config.
"""
from __future__ import annotations

import copy
from typing import Any

from .schema import DEFAULT_FILL_VERSION, require_object, schema_version, shared_schema


def resolve_ref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref`` pointers (``#/$defs/x``) until a plain subschema.

    Keywords written beside a ``$ref`` (a ``default`` or ``description``)
    override the referenced ones, as a reader of the schema would expect.
    """
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            raise ValueError(f"unsupported or circular $ref {ref!r} in the dataset schema")
        seen.add(ref)
        target: Any = root
        for raw in ref[2:].split("/"):
            target = target[raw.replace("~1", "/").replace("~0", "~")]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings}
    return node


def _fill_object(user: dict[str, Any], schema: dict[str, Any], root: dict[str, Any]) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    for name, raw in properties.items():
        sub = resolve_ref(raw, root)
        if name not in user and sub.get("default") is not None:
            user[name] = copy.deepcopy(sub["default"])
    for name, value in user.items():
        if name in properties:
            _fill_value(value, resolve_ref(properties[name], root), root)


def _fill_value(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> None:
    kind = schema.get("type")
    if isinstance(value, dict) and kind == "object":
        _fill_object(value, schema, root)
    elif isinstance(value, list) and kind == "array" and "items" in schema:
        items = resolve_ref(schema["items"], root)
        if items.get("type") == "object":
            for item in value:
                if isinstance(item, dict):
                    _fill_object(item, items, root)


def fill_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """Return a new config with every schema default filled in.

    The input is never modified: it is deep-copied first, and every inserted
    default is its own copy, so two tasks never share one ``parameters``
    dict. A config without ``version`` is filled with the 3.1 schema (and so
    gets ``version: 3.1``), as IceProd does. Raises ConfigError when the
    config is not an object or names an unsupported version.
    """
    require_object(config)
    version = schema_version(config) if "version" in config else DEFAULT_FILL_VERSION
    root = shared_schema(version)
    filled = copy.deepcopy(config)
    _fill_object(filled, root, root)
    return filled
