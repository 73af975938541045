"""IceProd's ``getType``: how an expanded string becomes a typed value.

Every final result goes through :func:`get_type`, so ``"$(job)"`` is the
int 7 and ``"[1, 2]"`` a list, exactly as IceProd 3.1.3 types them.
"""
from __future__ import annotations

import functools
import json
from typing import Any


def get_type(text: str) -> Any:
    """Type ``text`` like IceProd: JSON (with ``'`` read as ``"``), then
    true/false, then digits, then float; anything else stays a string.

    Text wrapped in double quotes is kept verbatim (quotes included).
    """
    if len(text) > 4096:
        return _get_type(text)
    value = _cached_scalar(text)
    if value is _CONTAINER:
        return _get_type(text)
    return value


_CONTAINER = object()


@functools.lru_cache(maxsize=16384)
def _cached_scalar(text: str) -> Any:
    # Containers are mutable, so they are parsed afresh on every call; only
    # immutable results (the common case: numbers, words) are cached.
    value = _get_type(text)
    if isinstance(value, (list, dict)):
        return _CONTAINER
    return value


# First characters (after blanks) that json.loads / float() can accept; a
# text starting otherwise is a plain word, and raising and catching two
# exceptions to learn that is the slowest part of typing a path.
_JSON_START = frozenset("[{\"'-0123456789tfnNI")
_FLOAT_START = frozenset("+-.0123456789iInN")


def _get_type(text: str) -> Any:
    if text.startswith('"') and text.endswith('"'):
        return text
    first = text.lstrip()[:1]
    if first in _JSON_START:
        try:
            return json.loads(text.replace("'", '"'))
        except (ValueError, RecursionError):
            pass
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if first not in _FLOAT_START and not text.isdigit():
        return text
    try:
        if text.isdigit():
            return int(text)
        return float(text)
    except (ValueError, OverflowError):
        return text


def to_text(value: Any) -> str:
    """How a resolved value is written into the surrounding text (IceProd's
    ``parse_ret_type`` + ``json.dumps`` for structures)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


class Verbatim(str):
    """A string that must not be re-typed by :func:`get_type`.

    ``$sprintf`` results are strings (F1). When a scope stores such a result
    as a parameter, this marker keeps ``$(param)`` a string in inner scopes
    too, instead of losing the zero padding there.
    """

    __slots__ = ()
