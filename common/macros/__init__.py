"""frazil's macro language: IceProd's ``$(name)``/``$keyword(arg)`` language
with the fixes F1–F8 of DESIGN.md §3.3 (see docs/macros.md).

Modules: ``syntax`` (lexer/parser, cached templates), ``evaluator`` (passes,
fixpoint, containers), ``functions`` (keywords), ``arith`` ($eval),
``coercion`` (IceProd's getType), ``context`` (lookup tables, bounds),
``api`` (expand, expand_scope), ``runtime`` (runtime options), ``budget``
(a time and size budget over many expansions).
"""
from __future__ import annotations

from .api import expand, expand_scope
from .budget import Budget, BudgetExceeded, budget
from .errors import Diagnostic, MacroError
from .runtime import runtime_options

__all__ = ["Budget", "BudgetExceeded", "Diagnostic", "MacroError", "budget", "expand", "expand_scope",
           "runtime_options"]
