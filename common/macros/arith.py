"""``$eval``: arithmetic only (F7), bounded (F4).

The expression is parsed with :mod:`ast` and only numbers and arithmetic
operators are evaluated (IceProd 3.1's whitelist: ``+ - * / // % ** ^`` and
unary ``~ + -``). Unlike IceProd, sizes are checked *before* computing, so
``9**9**9`` fails at once instead of hanging the task runner.
"""
from __future__ import annotations

import ast
import functools
import math
import operator
from typing import Any, Callable

# Results are written into text, and Python refuses to print ints above 4300
# digits anyway; stop well before that.
MAX_INT_BITS = 4096
MAX_EXPR_LEN = 2000


class EvalError(Exception):
    """The expression is not plain arithmetic, or is too large, or fails."""


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.xor,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.Invert: operator.invert,
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def safe_eval(expr: str) -> int | float:
    """Evaluate ``expr``; raise :class:`EvalError` naming the problem."""
    ok, value = _cached_eval(expr)
    if not ok:
        raise EvalError(value)
    return value


@functools.lru_cache(maxsize=16384)
def _cached_eval(expr: str) -> tuple[bool, Any]:
    # Pure function of the text: constants such as $eval(10**11) are computed
    # once per process. Errors are cached too, as messages.
    try:
        return True, _evaluate(expr)
    except EvalError as exc:
        return False, str(exc)


def _evaluate(expr: str) -> int | float:
    if not expr.strip():
        raise EvalError("empty expression")
    if len(expr) > MAX_EXPR_LEN:
        raise EvalError(f"expression longer than {MAX_EXPR_LEN} characters")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise EvalError(f"not an arithmetic expression: {getattr(exc, 'msg', exc)}") from None
    return evaluate_tree(tree, {})


def evaluate_tree(tree: ast.Expression, names: dict[str, int | float]) -> int | float:
    """Evaluate a parsed expression; ``names`` are the numbers macros stand for."""
    try:
        return _node(tree.body, names)
    except RecursionError:
        raise EvalError("expression nested too deeply") from None


def check_tree(node: ast.AST, names: set[str]) -> bool:
    """Raise EvalError unless ``node`` is arithmetic on numbers and ``names``;
    return whether it contains ``**`` (the one operator that needs size checks
    as it goes)."""
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise EvalError(f"only numbers are allowed, not {node.value!r}")
        return False
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise EvalError(f"name {node.id!r} is not allowed")
        return False
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise EvalError(f"operator {type(node.op).__name__} is not allowed")
        left = check_tree(node.left, names)
        right = check_tree(node.right, names)
        return isinstance(node.op, ast.Pow) or left or right
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise EvalError(f"operator {type(node.op).__name__} is not allowed")
        return check_tree(node.operand, names)
    raise EvalError(f"{type(node).__name__} is not basic arithmetic")


def _node(node: ast.AST, names: dict[str, int | float]) -> int | float:
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) not in (int, float):  # not bool, str, complex, None
            raise EvalError(f"only numbers are allowed, not {value!r}")
        return value
    if isinstance(node, ast.BinOp):
        func = _BINARY.get(type(node.op))
        if func is None:
            raise EvalError(f"operator {type(node.op).__name__} is not allowed")
        left = _node(node.left, names)
        right = _node(node.right, names)
        _check_size(node.op, left, right)
        try:
            result = func(left, right)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise EvalError(f"{type(exc).__name__}: {exc}") from None
        if type(result) not in (int, float):  # (-8)**0.5 is complex
            raise EvalError(f"result {result!r} is not a real number")
        return result
    if isinstance(node, ast.UnaryOp):
        func1 = _UNARY.get(type(node.op))
        if func1 is None:
            raise EvalError(f"operator {type(node.op).__name__} is not allowed")
        operand = _node(node.operand, names)
        try:
            return func1(operand)
        except TypeError as exc:  # ~1.5
            raise EvalError(f"TypeError: {exc}") from None
    raise EvalError(f"{type(node).__name__} is not basic arithmetic")


def _check_size(op: ast.operator, left: int | float, right: int | float) -> None:
    """Refuse integer results that would exceed MAX_INT_BITS, before computing."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return  # float arithmetic is bounded (it overflows to an error or inf)
    if isinstance(op, ast.Pow):
        if right <= 0 or abs(left) <= 1:
            return
        if right.bit_length() > 32:
            raise EvalError("exponent too large")
        bits = right * math.log2(abs(left))
    elif isinstance(op, ast.Mult):
        bits = left.bit_length() + right.bit_length()
    else:
        return
    if bits > MAX_INT_BITS:
        raise EvalError(f"result too large (about {int(bits)} bits, limit {MAX_INT_BITS})")
