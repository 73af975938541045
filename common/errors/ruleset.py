"""Failure classification rules: loading and validating ``rules.json`` (or an operator's file).

The rules are data so that operators can add a new transient error the day
they see it, without a release (IceProd's lists grew by pull requests:
"opencl errors are node failures", "Retry on bus error", reference §11).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ACTIONS",
    "CLASSES",
    "DEFAULT_RULES_PATH",
    "MATCH_MODES",
    "RULES_ENV",
    "WHERE",
    "Condition",
    "Rule",
    "RulesError",
    "load_rules",
    "parse_rules",
]

WHERE: tuple[str, ...] = ("stderr", "stdout", "stdlog", "reason", "exit")
CLASSES: tuple[str, ...] = ("physics", "non-physics")
ACTIONS: tuple[str, ...] = ("retry", "fail", "escalate")
MATCH_MODES: tuple[str, ...] = ("substring", "regex")
DEFAULT_RULES_PATH = Path(__file__).with_name("rules.json")
#: Environment variable naming an operator's rules file (replaces the defaults).
RULES_ENV = "FRAZIL_ERROR_RULES"

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_RULE_KEYS = {"id", "description", "pattern", "match", "where", "class", "kind", "action", "example", "also"}
_REQUIRED = ("id", "pattern", "match", "where", "class", "kind", "action")
_CONDITION_KEYS = {"where", "pattern", "match"}
_EXAMPLE_KEYS = {"exit_code", "signal", "stderr_tail", "stdout_tail", "stdlog_tail", "reason", "kind_hint"}


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, rule and field."""


@dataclass(frozen=True)
class Condition:
    """One test: ``pattern`` found in the text ``where`` names.

    For ``where: "exit"`` the pattern must match a whole token built by the
    classifier (``exit:137``, ``signal:SIGKILL``, ``exit-signal:SIGKILL``),
    so ``exit:13`` can never match ``exit:132``.
    """

    where: str
    pattern: str
    match: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def search(self, text: str) -> str | None:
        """The matched line (or token) if the condition holds, else None."""
        if self.where == "exit":
            for token in text.split():
                if self.regex.fullmatch(token):
                    return token
            return None
        found = self.regex.search(text)
        if found is None:
            return None
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", found.end())
        return text[start:len(text) if end < 0 else end].strip()


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: str
    match: str
    where: str
    failure_class: str
    kind: str
    action: str
    description: str = ""
    also: tuple[Condition, ...] = ()
    example: Mapping[str, Any] | None = field(default=None, compare=False)
    condition: Condition | None = field(default=None, compare=False, repr=False)


def _compile(where: str, pattern: str, mode: str, context: str) -> Condition:
    source = re.escape(pattern) if mode == "substring" else pattern
    try:
        regex = re.compile(source, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise RulesError(f"{context}: 'pattern' is not a valid regular expression: {exc}") from None
    return Condition(where=where, pattern=pattern, match=mode, regex=regex)


def _choice(obj: Mapping[str, Any], key: str, choices: tuple[str, ...], context: str) -> str:
    value = obj.get(key)
    if value not in choices:
        raise RulesError(f"{context}: '{key}' must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _text_field(obj: Mapping[str, Any], key: str, context: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RulesError(f"{context}: '{key}' must be a non-empty string; got {value!r}")
    return value


def _condition(obj: Any, context: str) -> Condition:
    if not isinstance(obj, Mapping):
        raise RulesError(f"{context}: must be an object with where, pattern and match")
    extra = set(obj) - _CONDITION_KEYS
    if extra:
        raise RulesError(f"{context}: unknown field(s) {', '.join(sorted(extra))}")
    where = _choice(obj, "where", WHERE, context)
    mode = _choice(obj, "match", MATCH_MODES, context)
    return _compile(where, _text_field(obj, "pattern", context), mode, context)


def _rule(obj: Any, index: int, source: str) -> Rule:
    context = f"{source}: rule {index}"
    if not isinstance(obj, Mapping):
        raise RulesError(f"{context}: must be an object, got {type(obj).__name__}")
    if isinstance(obj.get("id"), str):
        context += f" ({obj['id']})"
    missing = [key for key in _REQUIRED if key not in obj]
    if missing:
        raise RulesError(f"{context}: missing field(s) {', '.join(missing)}")
    extra = set(obj) - _RULE_KEYS
    if extra:
        raise RulesError(f"{context}: unknown field(s) {', '.join(sorted(extra))}")
    rule_id = _text_field(obj, "id", context)
    if not _ID_RE.match(rule_id):
        raise RulesError(f"{context}: 'id' must be lower-case letters, digits, '.', '_' or '-'")
    where = _choice(obj, "where", WHERE, context)
    mode = _choice(obj, "match", MATCH_MODES, context)
    failure_class = _choice(obj, "class", CLASSES, context)
    action = _choice(obj, "action", ACTIONS, context)
    if failure_class == "physics" and action != "fail":
        raise RulesError(f"{context}: a physics rule must have action 'fail' (physics failures are not retried)")
    if failure_class == "non-physics" and action == "fail":
        raise RulesError(f"{context}: a non-physics rule must retry or escalate, not fail")
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise RulesError(f"{context}: 'description' must be a string")
    also_raw = obj.get("also", [])
    if not isinstance(also_raw, list):
        raise RulesError(f"{context}: 'also' must be a list of conditions")
    example = obj.get("example")
    if example is not None and (not isinstance(example, Mapping) or set(example) - _EXAMPLE_KEYS):
        raise RulesError(f"{context}: 'example' must be an object with keys from {', '.join(sorted(_EXAMPLE_KEYS))}")
    pattern = _text_field(obj, "pattern", context)
    return Rule(
        id=rule_id, pattern=pattern, match=mode, where=where, failure_class=failure_class,
        kind=_text_field(obj, "kind", context), action=action, description=description,
        also=tuple(_condition(c, f"{context} also[{i}]") for i, c in enumerate(also_raw)),
        example=example, condition=_compile(where, pattern, mode, context),
    )


def parse_rules(data: Any, source: str = "<rules>") -> list[Rule]:
    """Validate decoded rules: a list of rules or ``{"rules": [...]}``."""
    if isinstance(data, Mapping):
        if "rules" not in data:
            raise RulesError(f"{source}: expected a list of rules or an object with a 'rules' list")
        data = data["rules"]
    if not isinstance(data, list):
        raise RulesError(f"{source}: 'rules' must be a list, got {type(data).__name__}")
    rules = [_rule(obj, i, source) for i, obj in enumerate(data)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RulesError(f"{source}: rule id {rule.id!r} appears twice")
        seen.add(rule.id)
    return rules


_cache: dict[tuple[str, float], list[Rule]] = {}


def load_rules(path: str | os.PathLike[str] | None = None) -> list[Rule]:
    """Rules from ``path``; by default ``$FRAZIL_ERROR_RULES`` or the packaged ``rules.json``.

    An operator's file replaces the defaults; to extend them, load both and
    concatenate (``load_rules(mine) + load_rules()``) so their rules come first.
    """
    chosen = Path(path if path is not None else os.environ.get(RULES_ENV) or DEFAULT_RULES_PATH)
    try:
        key = (str(chosen.resolve()), chosen.stat().st_mtime)
    except OSError as exc:
        raise RulesError(f"cannot read rules file {chosen}: {exc.strerror or exc}") from None
    if key in _cache:
        return list(_cache[key])
    try:
        data = json.loads(chosen.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"cannot read rules file {chosen}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{chosen}: not valid JSON: {exc}") from None
    rules = parse_rules(data, str(chosen))
    _cache[key] = rules
    return list(rules)
