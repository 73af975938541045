"""Declared JSON messages: one dataclass per message, one declaration per field.

From a field's declaration come its check (:meth:`Message.parse`, with a
message that names the field, as the server's 400s must), its JSON Schema
(the OpenAPI document) and its row in the documentation
(:func:`markdown_table`), so the three cannot disagree. The checks are plain
Python, not a schema interpreter: the server parses every pilot report with
them, and that path is measured (benchmarks/claim.py).

The messages themselves are in :mod:`common.protocol`.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "os", "any")


class ProtocolError(ValueError):
    """A message that breaks its declaration; the text names the field."""


@dataclass(frozen=True)
class Wire:
    """How one field travels: JSON type, bounds, whether it must be there."""

    type: str
    doc: str
    required: bool = False
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    items: "Wire | None" = None
    """Arrays: each item's declaration."""
    max_items: int | None = None
    message: "type[Message] | None" = None
    """Objects: the nested message; None for a free-form object."""
    values: "Wire | None" = None
    """Free-form objects: each value's declaration."""
    require: tuple[str, ...] | None = None
    """Nested messages: the keys required here (overrides the message's own)."""
    name: str = ""
    """The JSON name, when it is not the attribute's (``class`` is a keyword)."""

    def __post_init__(self) -> None:
        assert self.type in JSON_TYPES, self.type


def wire(type: str, doc: str, *, default: Any = None, factory: Any = None, **kwargs: Any) -> Any:
    """A dataclass field carrying its :class:`Wire` declaration."""
    meta = {"wire": Wire(type, doc, **kwargs)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _where(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check(spec: Wire, value: Any, where: str) -> Any:
    """``value`` checked against ``spec``; the value to keep (nested messages parsed)."""
    if value is None:
        if spec.nullable or spec.type == "any":
            return None
        raise ProtocolError(f"key {where!r}: None is not of type {spec.type!r}")
    kind = spec.type
    if kind == "string":
        if not isinstance(value, str):
            raise ProtocolError(f"key {where!r}: {value!r:.80} is not of type 'string'")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise ProtocolError(f"key {where!r}: longer than {spec.max_length} characters")
        if spec.enum is not None and value not in spec.enum:
            raise ProtocolError(f"key {where!r}: {value!r:.80} is not one of {list(spec.enum)}")
        if spec.pattern is not None and not re.search(spec.pattern, value):
            raise ProtocolError(f"key {where!r}: {value!r:.80} does not match {spec.pattern!r}")
        return value
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                kind == "integer" and not isinstance(value, int)):
            raise ProtocolError(f"key {where!r}: {value!r:.80} is not of type {kind!r}")
        if isinstance(value, float) and not math.isfinite(value):  # JSON parsers accept NaN
            raise ProtocolError(f"key {where!r}: {value!r:.80} is not a number")
        if spec.minimum is not None and value < spec.minimum:
            raise ProtocolError(f"key {where!r}: {value!r:.80} is less than the minimum of {spec.minimum:g}")
        if spec.maximum is not None and value > spec.maximum:
            raise ProtocolError(f"key {where!r}: {value!r:.80} is greater than the maximum of {spec.maximum:g}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ProtocolError(f"key {where!r}: {value!r:.80} is not of type 'boolean'")
        return value
    if kind == "os":  # one string (as in task requirements) or a list of them
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or len(values) > 100 or not all(
                isinstance(v, str) and len(v) <= 200 for v in values):
            raise ProtocolError(f"key {where!r}: expected a string or a list of at most 100 strings")
        return [v for v in values if v]
    if kind == "array":
        if not isinstance(value, list):
            raise ProtocolError(f"key {where!r}: {value!r:.80} is not of type 'array'")
        if spec.max_items is not None and len(value) > spec.max_items:
            raise ProtocolError(f"key {where!r}: more than {spec.max_items} items")
        item = spec.items
        return value if item is None else [check(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "object":
        if not isinstance(value, dict):
            raise ProtocolError(f"key {where!r}: {value!r:.80} is not of type 'object'")
        if spec.message is not None:
            return spec.message.parse(value, path=where, require=spec.require)
        if spec.values is not None:
            for key, item in value.items():
                check(spec.values, item, _where(where, key))
        return value
    return value  # "any"


class Message:
    """Base of the protocol's dataclasses (subclasses are ``@dataclass``)."""

    EXTRA: ClassVar[str] = "forbid"
    """"forbid": unknown keys are refused; "ignore": dropped (replies, which
    may grow); "keep": kept in ``extra`` (IceProd's free-form documents)."""
    _specs: ClassVar[dict[str, tuple[str, Wire]]]

    @classmethod
    def specs(cls) -> dict[str, tuple[str, Wire]]:
        """JSON name -> (attribute, declaration), in declaration order."""
        cached = cls.__dict__.get("_specs")
        if cached is None:
            cached = {}
            for f in dataclasses.fields(cls):  # type: ignore[arg-type]
                spec = f.metadata.get("wire")
                if spec is not None:
                    cached[spec.name or f.name] = (f.name, spec)
            cls._specs = cached
        return cached

    @classmethod
    def required(cls) -> tuple[str, ...]:
        return tuple(name for name, (_, spec) in cls.specs().items() if spec.required)

    @classmethod
    def parse(cls, doc: Any, *, path: str = "", require: tuple[str, ...] | None = None) -> Any:
        """The message from a JSON document, or :class:`ProtocolError` naming the field."""
        if not isinstance(doc, dict):
            raise ProtocolError(f"key {path!r}: expected an object" if path else "body: expected a JSON object")
        specs = cls.specs()
        for name in require if require is not None else cls.required():
            if name not in doc:
                raise ProtocolError(f"missing key: {name}" + (f" in {path}" if path else ""))
        unknown = [k for k in doc if k not in specs]
        if unknown and cls.EXTRA == "forbid":
            raise ProtocolError(f"invalid keys found: {', '.join(map(repr, unknown[:5]))}"
                                + (f" in {path}" if path else "") + f"; expected some of {', '.join(specs)}")
        values = {}
        for name, value in doc.items():
            entry = specs.get(name)
            if entry is not None:
                values[entry[0]] = check(entry[1], value, _where(path, name))
        message = cls(**values)
        if unknown and cls.EXTRA == "keep":
            message.extra = {k: doc[k] for k in unknown}  # type: ignore[attr-defined]
        return message

    def to_json(self) -> dict[str, Any]:
        """The JSON document (fields left at None are left out; nested messages too)."""
        doc: dict[str, Any] = {}
        for name, (attr, spec) in self.specs().items():
            value = getattr(self, attr)
            if value is None:
                continue
            if isinstance(value, Message):
                value = value.to_json()
            elif isinstance(value, list) and spec.items is not None and spec.items.message is not None:
                value = [v.to_json() if isinstance(v, Message) else v for v in value]
            doc[name] = value
        doc.update(getattr(self, "extra", None) or {})
        return doc


def json_schema(spec: Wire | type[Message], require: tuple[str, ...] | None = None) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a message or a field, for the OpenAPI document."""
    if isinstance(spec, type):
        props = {name: json_schema(s) for name, (_, s) in spec.specs().items()}
        schema: dict[str, Any] = {"type": "object", "properties": props}
        required = list(require if require is not None else spec.required())
        if required:
            schema["required"] = required
        if spec.EXTRA == "forbid":
            schema["additionalProperties"] = False
        return schema
    kind = spec.type
    if kind == "os":
        out: dict[str, Any] = {"anyOf": [{"type": "string", "maxLength": 200},
                                         {"type": "array", "items": {"type": "string", "maxLength": 200},
                                          "maxItems": 100}]}
    elif kind == "any":
        out = {}
    elif kind == "object" and spec.message is not None:
        out = json_schema(spec.message, spec.require)
    else:
        out = {"type": [kind, "null"] if spec.nullable else kind}
        bounds = {"minimum": spec.minimum, "maximum": spec.maximum, "maxLength": spec.max_length,
                  "pattern": spec.pattern, "maxItems": spec.max_items}
        out.update({k: v for k, v in bounds.items() if v is not None})
        if spec.enum is not None:
            out["enum"] = list(spec.enum) + ([None] if spec.nullable else [])
        if spec.items is not None:
            out["items"] = json_schema(spec.items)
        if spec.values is not None:
            out["additionalProperties"] = json_schema(spec.values)
    out["description"] = spec.doc
    return out


def _type_text(spec: Wire) -> str:
    if spec.type == "os":
        return "string or list of strings"
    if spec.type == "object" and spec.message is not None:
        return f"object ({spec.message.__name__})"
    if spec.type == "array" and spec.items is not None:
        inner = spec.items.message.__name__ if spec.items.message is not None else spec.items.type
        return f"list of {inner}"
    text = spec.type
    if spec.enum is not None:
        text = " \\| ".join(f"`{e}`" for e in spec.enum)
    return text + (" or null" if spec.nullable else "")


def markdown_table(message: type[Message], require: tuple[str, ...] | None = None) -> str:
    """The documentation table of a message (docs/pilot-api.md embeds these)."""
    required = set(require if require is not None else message.required())
    rows = ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
    for name, (_, spec) in message.specs().items():
        rows.append(f"| `{name}` | {_type_text(spec)} | {'yes' if name in required else ''} | {spec.doc} |")
    return "\n".join(rows)


def render_blocks(text: str, messages: Mapping[str, type[Message]]) -> str:
    """``text`` with every ``<!-- protocol: Name -->`` … ``<!-- /protocol -->``
    block replaced by the table of message ``Name``."""
    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in messages:
            raise KeyError(f"docs name an unknown protocol message {name!r}")
        return f"<!-- protocol: {name} -->\n{markdown_table(messages[name])}\n<!-- /protocol -->"
    return re.sub(r"<!-- protocol: (\w+) -->.*?<!-- /protocol -->", table, text, flags=re.S)
