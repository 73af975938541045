"""Failure classification: physics vs non-physics, with the rules as data (``rules.json``).

See docs/failures.md for the classes, every rule and how to configure them.
"""
from common.errors.classifier import (
    HINTS,
    PHYSICS_HINTS,
    INFRASTRUCTURE_KINDS,
    TAIL_BYTES,
    TAIL_LINES,
    Classification,
    FailureEvidence,
    classify,
    exit_tokens,
    tail_text,
)
from common.errors.ruleset import (
    DEFAULT_RULES_PATH,
    RULES_ENV,
    Condition,
    Rule,
    RulesError,
    load_rules,
    parse_rules,
)

__all__ = [
    "DEFAULT_RULES_PATH",
    "HINTS",
    "PHYSICS_HINTS",
    "INFRASTRUCTURE_KINDS",
    "RULES_ENV",
    "TAIL_BYTES",
    "TAIL_LINES",
    "Classification",
    "Condition",
    "FailureEvidence",
    "Rule",
    "RulesError",
    "classify",
    "exit_tokens",
    "load_rules",
    "parse_rules",
    "tail_text",
]
