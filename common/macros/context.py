"""What a phrase can see: the config's parts, the scope parameters and the
environment, looked up once per :func:`expand` call."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .budget import charge
from .errors import Diagnostic

_EMPTY: Mapping[str, Any] = {}

# Bounds of one expand() call (F4). A value that needs more is reported and
# left as it was.
MAX_PASSES = 20
MAX_TEXT = 1_000_000
MAX_WORK = 20_000_000
MAX_DEPTH = 64
MAX_MACROS = 10_000  # phrases, braces and [key] lookups in one pass of one value


class BoundExceeded(Exception):
    """Expansion grew past a bound; the input string being expanded is
    reported and left as written."""


def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:
        return value
    if value is None or not isinstance(value, Mapping):  # the ABC check is slow
        return _EMPTY
    return value


class Context:
    """Lookup tables and accounting for one expansion."""

    __slots__ = (
        "parameters", "top", "options", "steering", "system", "dif", "plus",
        "environment", "problems", "work",
    )

    def __init__(
        self,
        config: Mapping[str, Any] | None,
        parameters: Mapping[str, Any] | None,
        environment: Mapping[str, Any] | None,
    ) -> None:
        top = _mapping(config)
        steering = _mapping(top.get("steering"))
        difplus = _mapping(top.get("difplus"))
        self.parameters = _mapping(parameters)
        self.top = top
        self.options = _mapping(top.get("options"))
        self.steering = _mapping(steering.get("parameters"))
        self.system = _mapping(steering.get("system"))
        self.dif = _mapping(difplus.get("dif"))
        self.plus = _mapping(difplus.get("plus"))
        self.environment = _mapping(environment)
        # (phrase, message) pairs of the pass being evaluated.
        self.problems: list[tuple[str, str]] = []
        # Characters produced so far, across passes and nested values.
        self.work = 0

    def lookup(self, name: str) -> tuple[bool, Any]:
        """``$(name)``: parameters, then a non-dict top-level config key, then
        options, then steering parameters (reference §3.4); the first table
        holding the name decides, and a null value counts as not found."""
        if name in self.parameters:
            value = self.parameters[name]
        elif name in self.top and not isinstance(self.top[name], dict):
            value = self.top[name]
        elif name in self.options:
            value = self.options[name]
        elif name in self.steering:
            value = self.steering[name]
        else:
            return False, None
        return value is not None, value

    def table(self, which: str, key: str) -> tuple[bool, Any]:
        """``key`` in one table (``steering``, ``system``, ``options``,
        ``environment``, ``dif``, ``plus``), for the keyword functions."""
        table = getattr(self, which)
        found = key in table
        value = table[key] if found else None
        return found, value

    def spend(self, amount: int) -> None:
        self.work += amount
        charge(amount)  # the whole check's budget (budget.py), besides this value's own bound
        if self.work > MAX_WORK:
            raise BoundExceeded(f"expansion produced more than {MAX_WORK} characters in all")


# Where a value sits, built lazily: formatting "config['tasks'][0]" for
# every value expanded would cost more than expanding most of them.
Path = str | tuple[Any, Any]  # a string, or (parent Path, key)


def path_str(path: Path) -> str:
    keys = []
    while isinstance(path, tuple):
        path, key = path
        keys.append(f"[{key!r}]")
    return path + "".join(reversed(keys))


def report(diagnostics: list[Diagnostic] | None, path: Path, problems: Sequence[tuple[str, str]]) -> None:
    """Append ``problems`` (deduplicated) to ``diagnostics``."""
    if diagnostics is None or not problems:
        return
    path = path_str(path)
    seen: set[tuple[str, str]] = set()
    for phrase, message in problems:
        if (phrase, message) not in seen:
            seen.add((phrase, message))
            diagnostics.append(Diagnostic(path, phrase, message))
