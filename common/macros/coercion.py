"""IceProd's ``getType``: how an expanded string becomes a typed value.

Every final result goes through :func:`get_type`, so ``"$(job)"`` is the
int 7 and ``"[1, 2]"`` a list, exactly as IceProd 3.1.3 types them.
"""
from __future__ import annotations

import functools
import json
import re
import string
from typing import Any

from .context import BoundExceeded


def get_type(text: str) -> Any:
    """Type ``text`` like IceProd: JSON (with ``'`` read as ``"``), then
    true/false, then digits, then float; anything else stays a string.

    Text wrapped in double quotes is kept verbatim (quotes included).
    """
    first = text[:1]
    if first in _WORD_START:
        return text  # "gsiftp://...", "/cvmfs/...": no parser accepts these
    if first in _KEYWORD_START and not text[:5].lower().startswith(_KEYWORDS):
        return text  # "NuGen_7.i3": a word, though N could start NaN
    if len(text) > 4096:
        return _get_type(text)
    value = _cached_scalar(text)
    if value is _CONTAINER:
        return _get_type(text)
    return value


_CONTAINER = object()
# First characters with which neither JSON, float() nor true/false can begin
# (t, f, n, i and their capitals start words those accept: true, nan, inf...).
_KEYWORD_START = frozenset("tTfFnNiI")
_KEYWORDS = ("true", "false", "null", "nan", "inf")
_WORD_START = frozenset(string.ascii_letters + "/_:$<>@#&*=?!|;`()%,") - _KEYWORD_START


@functools.lru_cache(maxsize=16384)
def _cached_scalar(text: str) -> Any:
    # Containers are mutable, so they are parsed afresh on every call; only
    # immutable results (the common case: numbers, words) are cached.
    value = _get_type(text)
    if isinstance(value, (list, dict)):
        return _CONTAINER
    return value


# Most expanded values are words or paths. Deciding that by letting
# json.loads and float() raise is the slowest part of typing them, so a text
# is only offered to a parser that could accept it.
_JSON_START = frozenset("[{\"'")
_JSON_WORDS = ("true", "false", "null", "NaN", "Infinity")
_FLOAT_WORDS = ("nan", "inf", "+nan", "-nan", "+inf", "-inf")
_NUMBER = re.compile(r"[+-]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9][0-9_]*)?")


def _get_type(text: str) -> Any:
    if text.startswith('"') and text.endswith('"'):
        return text
    stripped = text.strip()
    first = stripped[:1]
    # float() also reads non-ASCII digits; such texts take the slow path.
    numeric = _NUMBER.fullmatch(stripped) is not None or not stripped.isascii()
    if numeric or first in _JSON_START or stripped.startswith(_JSON_WORDS) or first == "-":
        try:
            return json.loads(text.replace("'", '"'))
        except (ValueError, RecursionError):
            pass
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    try:
        if text.isdigit():
            return int(text)
        if numeric or stripped.lower().startswith(_FLOAT_WORDS):
            return float(text)
    except (ValueError, OverflowError):
        pass
    return text


def to_text(value: Any) -> str:
    """How a resolved value is written into the surrounding text (IceProd's
    ``parse_ret_type`` + ``json.dumps`` for structures)."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)  # a Verbatim marker must not leak into results
    try:
        if isinstance(value, (list, dict)):
            try:
                return json.dumps(value)
            except TypeError:  # not JSON (a set inside, say): Python's own text
                return str(value)
        return str(value)
    except ValueError:  # an int beyond Python's 4300-digit printing limit
        raise BoundExceeded("a value is too large to write as text") from None


class Verbatim(str):
    """A string that must not be re-typed by :func:`get_type`.

    ``$sprintf`` results are strings (F1). When a scope stores such a result
    as a parameter, this marker keeps ``$(param)`` a string in inner scopes
    too, instead of losing the zero padding there.
    """

    __slots__ = ()
