"""Pretty JSON that knows on which line each field is, so a problem reported
for ``config['tasks'][0]['requirements']['memory']`` can say "line 7" and
the submit page can jump there."""
from __future__ import annotations

import ast
import json
import re
from typing import Any

PathKey = tuple[str | int, ...]
PART = re.compile(r"""\[('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\d+)\]""")
"""One ``[repr(part)]`` of a path as ``common.config.errors.format_path`` writes it."""


def pretty_with_lines(value: Any, indent: int = 2) -> tuple[str, dict[PathKey, int]]:
    """(text, {path: 1-based line}) — the text is valid JSON, formatted like
    ``json.dumps(value, indent=2)``."""
    lines: list[str] = []
    where: dict[PathKey, int] = {}

    def emit(node: Any, path: PathKey, depth: int, prefix: str, suffix: str) -> None:
        pad = " " * (indent * depth)
        where[path] = len(lines) + 1
        if isinstance(node, dict) and node:
            lines.append(f"{pad}{prefix}{{")
            for i, (key, child) in enumerate(node.items()):
                emit(child, (*path, str(key)), depth + 1, f"{json.dumps(str(key))}: ", "," if i < len(node) - 1 else "")
            lines.append(f"{pad}}}{suffix}")
        elif isinstance(node, list) and node:
            lines.append(f"{pad}{prefix}[")
            for i, child in enumerate(node):
                emit(child, (*path, i), depth + 1, "", "," if i < len(node) - 1 else "")
            lines.append(f"{pad}]{suffix}")
        else:
            lines.append(f"{pad}{prefix}{json.dumps(node)}{suffix}")
    emit(value, (), 0, "", "")
    return "\n".join(lines), where


def parse_path(path: str) -> PathKey | None:
    """``config['tasks'][0]['name']`` -> ("tasks", 0, "name"); None when it is not such a path."""
    if not path.startswith("config"):
        return None
    rest, parts, pos = path[len("config"):], [], 0
    for match in PART.finditer(rest):
        if match.start() != pos:
            return None
        parts.append(ast.literal_eval(match.group(1)))
        pos = match.end()
    return tuple(parts) if pos == len(rest) else None


def line_of(path: str, where: dict[PathKey, int]) -> int | None:
    """The line of the field, or of its nearest existing parent (a missing key
    is reported at the object that should hold it)."""
    parts = parse_path(path)
    while parts is not None:
        if parts in where:
            return where[parts]
        if not parts:
            return None
        parts = parts[:-1]
    return None
