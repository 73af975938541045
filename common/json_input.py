"""Reading JSON that a user or a pilot sent: bounded, and errors that quote little.

``json.loads`` has three ways to turn hostile input into a server error:
numbers with more than 4300 digits (Python's int parsing limit raises a plain
``ValueError``), nesting deeper than the interpreter's recursion limit
(``RecursionError``), and nesting that parses but is deep enough to exhaust
the stack of whatever walks the document next (validation, macro expansion,
``copy.deepcopy``). :func:`loads` turns all three into :class:`JsonInputError`
(a ``ValueError`` whose text says what is wrong). :func:`echo` is how error
messages quote a value: a short prefix, never the whole (a 50 MB
description must not come back in the 400).
"""
from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Arrays/objects inside each other. IceProd configs use about 8 levels."""
ECHO_CHARS = 80
"""The most characters of a rejected value an error message quotes."""


class JsonInputError(ValueError):
    """The JSON cannot be accepted; the text names the problem."""


def echo(value: Any, limit: int = ECHO_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 4 * limit:
        return f"<an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits>"
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def shorten_message(message: str, value: Any, limit: int = ECHO_CHARS) -> str:
    """A library's message (jsonschema's ``'xxx…' is too long``) with the value it quotes cut short."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return message
    return message.replace(text, echo(value, limit)) if len(text) > limit else message


MESSAGE_CHARS = 500
"""The most characters of one problem's text (a message quoting several values)."""


def clip(message: str, limit: int = MESSAGE_CHARS) -> str:
    """One problem's text cut to ``limit`` characters (jsonschema quotes
    unexpected keys, enum values…: each could be megabytes)."""
    return message if len(message) <= limit else f"{message[:limit]}… ({len(message)} characters)"


def depth_problem(document: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why the document is nested too deeply, or None. Iterative: a deep
    document cannot exhaust the stack here."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return f"nested more than {max_depth} levels deep"
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return None


def loads(text: str | bytes, what: str = "request body", max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for hostile input: JsonInputError names what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JsonInputError(f"{what} is nested more than {max_depth} levels deep") from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise JsonInputError(f"{what} holds a number with too many digits ({str(exc).split(':')[0]})") from None
    problem = depth_problem(document, max_depth)
    if problem:
        raise JsonInputError(f"{what} is {problem}")
    return document
