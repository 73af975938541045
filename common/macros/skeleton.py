"""Fast ``$eval`` for arguments with macros in them.

IceProd evaluates ``$eval($(job)//1000*1000)`` by writing the job number into
the text and parsing the text again, for every job. Here the argument's
template is parsed once with a placeholder per macro (``_h0//1000*1000``),
and each job only supplies the numbers. This is exact whenever each macro
yields a non-negative number, whose text would have been one number token
in the same place; for anything else (negative numbers, strings, failures)
the caller falls back to the textual path, which defines the semantics.
"""
from __future__ import annotations

import ast
import math
from typing import Any, Sequence

from .arith import MAX_EXPR_LEN, MAX_INT_BITS, EvalError, check_tree, evaluate_tree
from .syntax import Node, Text

# A macro must not touch these, or its text would merge with the neighbour
# into another token ("1$(job)" is 17 for job 7, not 1 followed by 7).
_GLUE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.'\"")
_NO_GLOBALS: dict[str, Any] = {"__builtins__": {}}
_HOLE = "_h"  # placeholder names are _h0, _h1, ...


class Skeleton:
    """The compiled argument of one ``$eval`` phrase."""

    __slots__ = ("holes", "func", "tree", "names")

    def __init__(self, holes: tuple[Node, ...], tree: ast.Expression, func: Any) -> None:
        self.holes = holes
        self.tree = tree
        # A Python function of the holes; None when the tree has "**", which
        # is walked with size checks instead.
        self.func = func
        self.names = tuple(f"_h{i}" for i in range(len(holes)))

    def run(self, values: Sequence[Any]) -> int | float:
        """Evaluate with ``values`` for the holes; raise EvalError on any problem."""
        if self.func is None:
            return evaluate_tree(self.tree, dict(zip(self.names, values)))
        try:
            result = self.func(*values)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise EvalError(f"{type(exc).__name__}: {exc}") from None
        if type(result) not in (int, float) or (type(result) is int and result.bit_length() > MAX_INT_BITS):
            raise EvalError("result out of range")
        return result


def build(args: tuple[Node, ...]) -> Skeleton | None:
    """A skeleton for ``args``, or None when it has no macros or cannot be
    made exact (a macro glued to a word, two macros side by side)."""
    parts: list[str] = []
    holes: list[Node] = []
    previous_hole = False
    for node in args:
        if type(node) is Text:
            text = node.plain  # type: ignore[union-attr]
            if _HOLE in text:
                return None  # the user's own "_h0" must stay a (rejected) name
            if previous_hole and text and text[0] in _GLUE:
                return None
            parts.append(text)
            previous_hole = False
        else:
            if previous_hole or (parts and parts[-1] and parts[-1][-1] in _GLUE):
                return None
            parts.append(f"_h{len(holes)}")
            holes.append(node)
            previous_hole = True
    if not holes:
        return None
    source = "".join(parts).strip()
    if len(source) > MAX_EXPR_LEN:
        return None  # the textual path reports it
    try:
        tree = ast.parse(source, mode="eval")
        has_pow = check_tree(tree.body, {f"_h{i}" for i in range(len(holes))})
    except (SyntaxError, ValueError, RecursionError, MemoryError, EvalError):
        return None
    func = None
    if not has_pow:
        # check_tree allowed only numbers, the hole names and arithmetic, so
        # this lambda computes nothing but the checked expression.
        params = [ast.arg(arg=f"_h{i}") for i in range(len(holes))]
        lam = ast.Lambda(
            args=ast.arguments(posonlyargs=[], args=params, kwonlyargs=[], kw_defaults=[], defaults=[]),
            body=tree.body,
        )
        code = compile(ast.fix_missing_locations(ast.Expression(body=lam)), "<eval>", "eval")
        func = eval(code, _NO_GLOBALS)  # noqa: S307
    return Skeleton(tuple(holes), tree, func)


def usable(value: Any) -> bool:
    """Whether ``value``'s text is exactly one number token with this value."""
    kind = type(value)
    if kind is int:
        return value >= 0 and value.bit_length() <= MAX_INT_BITS
    if kind is float:
        return 0.0 <= value < math.inf and math.copysign(1.0, value) > 0
    return False
