"""The keyword functions ``$keyword(arg)`` (reference §3.5).

Each takes the already expanded argument text and returns a value, or raises
:class:`Failure` with a message for the diagnostic; the phrase then stays
literal, as in IceProd.
"""
from __future__ import annotations

import functools
import random
import re
from typing import Any, Callable

from .arith import EvalError, safe_eval
from .coercion import get_type
from .context import Context

# Bigger widths would let "$sprintf('%999999999d',1)" allocate a gigabyte.
MAX_WIDTH = 1000


class Failure(Exception):
    """The function cannot produce a value for this argument."""


def _table(name: str, which: str) -> Callable[[str, Context], Any]:
    def find(arg: str, ctx: Context) -> Any:
        found, value = ctx.table(which, arg)
        if found:
            return _as_value(value)
        raise Failure(f"{name} has no {arg!r}")

    return find


def _as_value(value: Any) -> Any:
    # IceProd's parse_ret_type: a null is written as the text "None".
    return "None" if value is None else value


def _metadata(arg: str, ctx: Context) -> Any:
    for which in ("dif", "plus"):
        found, value = ctx.table(which, arg)
        if found:
            return _as_value(value)
    raise Failure(f"difplus has no {arg!r}")


def _eval(arg: str, ctx: Context) -> Any:
    try:
        return safe_eval(arg)
    except EvalError as exc:
        raise Failure(f"$eval: {exc}") from None


def _choice(arg: str, ctx: Context) -> Any:
    if not arg:
        raise Failure("$choice: no choices given")
    return random.choice(arg.split(","))


def _reduction(func: Callable[[Any], Any]) -> Callable[[str, Context], Any]:
    def reduce(arg: str, ctx: Context) -> Any:
        try:
            return func(get_type(arg))
        except (TypeError, ValueError) as exc:
            raise Failure(f"${func.__name__}: {exc}") from None

    return reduce


# One conversion of a format: %[flags][width][.precision]type, or "%%".
_CONVERSION = re.compile(r"%(?:%|[#0\- +]*([0-9]*)(?:\.([0-9]*))?([csridufFeEgGxXo]))")


def _split_args(text: str) -> list[str]:
    """Split on commas outside quotes (F6); strip spaces; unquote a field
    written entirely in quotes."""
    fields: list[str] = []
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            fields.append(text[start:i])
            start = i + 1
    if quote:
        raise Failure(f"$sprintf: unclosed quote in arguments {text!r}")
    fields.append(text[start:])
    out = []
    for f in fields:
        f = f.strip()
        if len(f) >= 2 and f[0] in "'\"" and f[-1] == f[0]:
            f = f[1:-1]
        out.append(f)
    return out


def _cast(conv: str, arg: str) -> Any:
    if conv in "csr":
        return arg
    try:
        if conv in "xXo":
            try:
                return int(arg)
            except ValueError:
                value = float(arg)
                if not value.is_integer():
                    raise
                return int(value)
        if conv in "diu":
            try:
                return int(arg)
            except ValueError:
                return float(arg)
        return float(arg)
    except (ValueError, OverflowError):
        raise Failure(f"$sprintf: %{conv} needs a number, got {arg!r}") from None


def sprintf(arg: str, ctx: Context | None = None) -> str:
    """``$sprintf``, cached: a pure function of its argument text."""
    ok, text = _sprintf_cached(arg)
    if not ok:
        raise Failure(text)
    return text


@functools.lru_cache(maxsize=8192)
def _sprintf_cached(arg: str) -> tuple[bool, str]:
    try:
        return True, _sprintf(arg)
    except Failure as exc:
        return False, str(exc)


def _sprintf(arg: str) -> str:
    """``$sprintf(fmt, a, b)``: the format is the first argument, quoted or up
    to the first comma; the result is always a string (F1)."""
    if not arg:
        raise Failure("$sprintf: no format given")
    quote = arg[0]
    if quote in "'\"":
        end = arg.find(quote, 1)
        if end < 0:
            raise Failure("$sprintf: no closing quote for the format string")
        fmt = arg[1:end]
        comma = arg.find(",", end)
        between = arg[end + 1 : comma if comma >= 0 else len(arg)]
        if between.strip():
            raise Failure(f"$sprintf: unexpected {between.strip()!r} after the format string")
    else:
        comma = arg.find(",")
        if comma < 0:
            raise Failure("$sprintf: no arguments after the format")
        fmt = arg[:comma]
    args = _split_args(arg[comma + 1 :]) if comma >= 0 else []
    conversions = [m for m in _CONVERSION.finditer(fmt) if m.group(0) != "%%"]
    if not conversions:
        return fmt.replace("%%", "%")  # extra arguments are ignored, as in IceProd
    if len(conversions) != len(args):
        raise Failure(f"$sprintf: format {fmt!r} takes {len(conversions)} arguments, got {len(args)}")
    values = []
    for m, value in zip(conversions, args):
        width, precision, conv = m.groups()
        if (width and int(width) > MAX_WIDTH) or (precision and int(precision) > MAX_WIDTH):
            raise Failure(f"$sprintf: width or precision above {MAX_WIDTH} in {m.group(0)!r}")
        values.append(_cast(conv, value))
    try:
        return fmt % tuple(values)
    except (TypeError, ValueError, OverflowError) as exc:
        raise Failure(f"$sprintf: {exc}") from None


# Keywords that read one table of the Context, by attribute name; the
# evaluator reads these directly and calls the function only to report.
TABLES: dict[str, str] = {
    "steering": "steering", "system": "system", "environ": "environment", "args": "options", "options": "options",
}

KEYWORDS: dict[str, Callable[[str, Context], Any]] = {
    "steering": _table("steering.parameters", "steering"),
    "system": _table("steering.system", "system"),
    "environ": _table("the environment", "environment"),
    "args": _table("options", "options"),
    "options": _table("options", "options"),
    "metadata": _metadata,
    "eval": _eval,
    "choice": _choice,
    "sprintf": sprintf,
    "sum": _reduction(sum),
    "min": _reduction(min),
    "max": _reduction(max),
    "len": _reduction(len),
}
