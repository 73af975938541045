"""Expansion of values: one pass over a parsed template, the re-parse
fixpoint loop of IceProd (bounded, F4), and recursion into lists and dicts.

A pass produces two texts: ``plain`` (escapes applied, what functions and
the final value see) and ``internal`` (escaped characters written with their
backslash again). The next pass re-parses ``internal``, so an escaped ``\\$``
stays literal to the end instead of being expanded one pass later (F2).
"""
from __future__ import annotations

from typing import Any

from .arith import EvalError
from .coercion import Verbatim, get_type, to_text
from .context import MAX_DEPTH, MAX_PASSES, MAX_TEXT, BoundExceeded, Context, Path, report
from .errors import Diagnostic
from .functions import KEYWORDS, TABLES, Failure
from .skeleton import build as build_skeleton
from .skeleton import usable
from .syntax import UNBUILT, Brace, Node, Phrase, Text, parse


def expand_value(value: Any, ctx: Context, path: Path, diagnostics: list[Diagnostic] | None, depth: int = 0) -> Any:
    """Expand strings, lists (items) and dicts (keys and values); anything
    else is returned unchanged. Inputs are never modified."""
    if isinstance(value, str):
        return expand_string(value, ctx, path, diagnostics, depth)[0]
    if isinstance(value, list):
        _check_depth(depth)
        ctx.spend(len(value))
        return [expand_value(v, ctx, (path, i), diagnostics, depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        _check_depth(depth)
        ctx.spend(len(value))
        out = {}
        for k, v in value.items():
            sub = (path, k)
            if isinstance(k, str) and ("$" in k or "\\" in k):
                key = expand_string(k, ctx, sub, diagnostics, depth + 1)[0]
                # Keys stay strings: IceProd would type "$(job)" as the int 7.
                k = key if isinstance(key, str) else to_text(key)
            out[k] = expand_value(v, ctx, sub, diagnostics, depth + 1)
        return out
    return value


def _check_depth(depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise BoundExceeded(f"values nested more than {MAX_DEPTH} levels deep")


def expand_string(
    text: str, ctx: Context, path: Path, diagnostics: list[Diagnostic] | None, depth: int = 0
) -> tuple[Any, bool]:
    """Expand one string to its typed value.

    Returns ``(value, verbatim)``; ``verbatim`` is True when the value is a
    string that must not be re-typed (a whole ``$sprintf``, F1).
    """
    if "$" not in text and "\\" not in text:
        typed = get_type(text)
        if isinstance(typed, (list, dict)):
            return expand_value(typed, ctx, path, diagnostics, depth + 1), False
        return typed, False
    value, verbatim, problems = _passes(text, ctx, path, diagnostics, depth)
    report(diagnostics, path, problems)
    return value, verbatim


def _passes(
    text: str, ctx: Context, path: Path, diagnostics: list[Diagnostic] | None, depth: int
) -> tuple[Any, bool, list[tuple[str, str]]]:
    """IceProd's loop: expand, type, and expand the result again until it
    stops changing, at most MAX_PASSES times (F4)."""
    current = text
    for _ in range(MAX_PASSES):
        template = parse(current)  # raises BoundExceeded past MAX_MACROS
        ctx.problems = [*template.problems] if template.problems else []
        nodes = template.nodes
        if len(nodes) == 1 and type(nodes[0]) is Phrase:
            plain, internal, verbatim, value = _phrase(nodes[0], ctx)  # type: ignore[arg-type]
        else:
            plain, internal = _sentence(nodes, ctx)
            verbatim, value = False, _TEXT
        if value is not _TEXT:
            # A whole value that is one number or bool: typing its text
            # would give it back, and its text has nothing left to expand.
            return value, False, ctx.problems
        size = len(internal)
        if size > MAX_TEXT:
            raise BoundExceeded(f"expansion grew past {MAX_TEXT} characters")
        ctx.spend(size)
        typed: Any = plain if verbatim else get_type(plain)
        if not isinstance(typed, str):
            problems = ctx.problems
            if isinstance(typed, (list, dict)):
                report(diagnostics, path, problems)
                return expand_value(typed, ctx, path, diagnostics, depth + 1), False, []
            return typed, False, problems
        if internal == current or ("$" not in internal and "\\" not in internal):
            return typed, verbatim, ctx.problems
        current = internal
    raise BoundExceeded(f"expansion did not settle after {MAX_PASSES} passes (a value that refers to itself?)")


_SMALL = 1 << 62
_TEXT: Any = object()  # "the value is the text", from _phrase
_SCALARS = (int, float, bool)


def _sentence(nodes: tuple[Node, ...], ctx: Context) -> tuple[str, str]:
    if len(nodes) == 1 and type(nodes[0]) is Text:
        return nodes[0].plain, nodes[0].internal  # type: ignore[union-attr]
    plains: list[str] = []
    internals: list[str] = []
    for node in nodes:
        kind = type(node)
        if kind is Text:
            plains.append(node.plain)  # type: ignore[union-attr]
            internals.append(node.internal)  # type: ignore[union-attr]
        elif kind is Phrase:
            static = node.static  # type: ignore[union-attr]
            if node.keyword is None and static is not None and not node.lookups:  # type: ignore[union-attr]
                # $(name), inlined: most phrases are plain lookups.
                found, value = ctx.lookup(static[0])
                if found:
                    p = value if type(value) is str else to_text(value)
                    plains.append(p)
                    internals.append(p)
                    continue
            elif node.keyword == "eval" and not node.lookups:  # type: ignore[union-attr]
                fast = _fast_eval(node, ctx)  # type: ignore[arg-type]
                if fast is not None:
                    p = str(fast)
                    plains.append(p)
                    internals.append(p)
                    continue
            p, i, _, _ = _phrase(node, ctx)  # type: ignore[arg-type]
            plains.append(p)
            internals.append(i)
        else:
            found, value = ctx.lookup(node.name)  # type: ignore[union-attr]
            # Unknown: a shell variable for the module's environment (F8), not a problem.
            p = (value if type(value) is str else to_text(value)) if found else node.raw  # type: ignore[union-attr]
            plains.append(p)
            internals.append(p)
    plain = "".join(plains)
    if len(plain) > MAX_TEXT:
        raise BoundExceeded(f"expansion grew past {MAX_TEXT} characters")
    return plain, "".join(internals)


def _phrase(node: Phrase, ctx: Context) -> tuple[str, str, bool, Any]:
    """Evaluate ``$keyword(args)[key]...`` to (plain, internal, verbatim,
    value); value is the number or bool itself, else _TEXT."""
    keyword = node.keyword
    if keyword == "eval" and not node.lookups:
        fast = _fast_eval(node, ctx)
        if fast is not None:
            text = str(fast)
            return text, text, False, fast
    static = node.static
    arg, arg_internal = static if static is not None else _sentence(node.args, ctx)
    try:
        if keyword is None:  # $(name), inlined: the most common phrase
            found, value = ctx.lookup(arg)
            if not found:
                raise Failure(f"unknown name {arg!r}")
        else:
            value = _resolve(keyword, arg, ctx)
    except Failure as exc:
        ctx.problems.append((node.raw, str(exc)))
        opener = "$" + (keyword or "") + "("
        plains = [opener, arg, ")"]
        internals = [opener, arg_internal, ")"]
        _literal_lookups(node.lookups, ctx, plains, internals)
        return "".join(plains), "".join(internals), False, _TEXT
    if node.lookups:
        return _index(node, value, ctx)
    if type(value) in _SCALARS:
        text = to_text(value)
        return text, text, False, value
    text = to_text(value)
    return text, text, keyword == "sprintf" or isinstance(value, Verbatim), _TEXT


def _resolve(keyword: str | None, arg: str, ctx: Context) -> Any:
    """The value of ``$keyword(arg)``; raise Failure when there is none."""
    if keyword is None:
        found, value = ctx.lookup(arg)
        if not found:
            raise Failure(f"unknown name {arg!r}")
        return value
    table = TABLES.get(keyword)
    if table is not None:  # $steering(x) and friends, without the function call
        mapping = getattr(ctx, table)
        if arg in mapping:
            value = mapping[arg]
            return "None" if value is None else value  # IceProd writes a null as None
    func = KEYWORDS.get(keyword)
    if func is None:
        raise Failure(f"unknown macro function ${keyword}")
    return func(arg, ctx)


def _fast_eval(node: Phrase, ctx: Context) -> int | float | None:
    """``$eval`` through its cached skeleton, or None to take the textual path."""
    skeleton = node.skeleton
    if skeleton is None:
        return None
    if skeleton is UNBUILT:
        skeleton = node.skeleton = build_skeleton(node.args)
        if skeleton is None:
            return None
    values = []
    for hole in skeleton.holes:
        value = _hole_value(hole, ctx)
        # Inlined check for the common case (a small non-negative int).
        if not (type(value) is int and 0 <= value < _SMALL) and not usable(value):
            return None
        values.append(value)
    try:
        return skeleton.run(values)
    except EvalError:
        return None  # the textual path reports the problem


def _hole_value(node: Node, ctx: Context) -> Any:
    """The value a macro inside ``$eval`` stands for, or None if it has none
    that a number token could replace exactly."""
    if type(node) is Brace:
        return ctx.lookup(node.name)[1]
    if type(node) is not Phrase or node.lookups:  # type: ignore[union-attr]
        return None
    keyword = node.keyword  # type: ignore[union-attr]
    if keyword is None and node.static is not None:  # type: ignore[union-attr]
        value = ctx.lookup(node.static[0])[1]  # type: ignore[union-attr]
        if type(value) is not str:
            return value
    elif keyword == "eval":
        return _fast_eval(node, ctx)  # type: ignore[arg-type]
    static = node.static  # type: ignore[union-attr]
    arg = static[0] if static is not None else _sentence(node.args, ctx)[0]  # type: ignore[union-attr]
    try:
        value = _resolve(keyword, arg, ctx)
    except Failure:
        return None
    if type(value) is str and value.isascii() and value.isdigit() and (value == "0" or value[0] != "0"):
        return int(value)  # "600" is the same token as 600
    return value


def _index(node: Phrase, value: Any, ctx: Context) -> tuple[str, str, bool, Any]:
    """Apply ``[key]`` lookups: the key is a name if it resolves, else its
    text; both sides are typed; a failed index keeps ``X[key]`` literal."""
    text = to_text(value)
    container: Any = value if isinstance(value, (list, dict)) else get_type(text)
    lookups = node.lookups
    for n, key_nodes in enumerate(lookups):
        kp, _ = _sentence(key_nodes, ctx)
        if "$" in kp:
            kp = _settle_key(kp, ctx)
        found, key = ctx.lookup(kp)
        key_text = to_text(key) if found else kp
        try:
            container = container[get_type(key_text)]
        except (LookupError, TypeError, ValueError):
            ctx.problems.append((node.raw, f"cannot index {text[:100]!r} with [{key_text[:100]}]"))
            plains, internals = [text], [text]
            _literal_lookups(lookups[n:], ctx, plains, internals)
            return "".join(plains), "".join(internals), False, _TEXT
        text = to_text(container)
    return text, text, False, _TEXT


def _settle_key(text: str, ctx: Context) -> str:
    """A key whose value still holds macros (``[$steering(choose)]`` where ``choose`` is
    ``$steering(array)[0]``) is expanded until it settles, as IceProd does, so the
    index uses the element and not the macro's text. Bounded like any expansion (F4)."""
    outer = ctx.problems
    try:
        value, _, problems = _passes(text, ctx, (), None, 1)
    finally:
        ctx.problems = outer
    outer.extend(problems)
    return to_text(value)


def _literal_lookups(lookups: list[tuple[Node, ...]], ctx: Context, plains: list[str], internals: list[str]) -> None:
    """Write ``[key]...`` back as text after a phrase or index that failed."""
    for key_nodes in lookups:
        kp, ki = _sentence(key_nodes, ctx)
        plains += ("[", kp, "]")
        internals += ("[", ki, "]")
