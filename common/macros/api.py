"""The public entry points :func:`expand` and :func:`expand_scope`."""
from __future__ import annotations

from typing import Any, Mapping

from .coercion import Verbatim, get_type, to_text
from .context import BoundExceeded, Context, Path, report
from .errors import Diagnostic, MacroError
from .evaluator import expand_string


def expand(
    value: Any,
    *,
    config: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    strict: bool = False,
    diagnostics: list[Diagnostic] | None = None,
    path: str = "",
) -> Any:
    """Expand the macros in ``value`` (a str, or lists/dicts of them).

    ``config`` is the dataset config (its ``options`` hold the runtime values),
    ``parameters`` the merged scope parameters, ``environment`` the
    ``$environ`` values. Phrases that cannot be resolved stay literal and are
    appended to ``diagnostics``; with ``strict`` a :class:`MacroError` listing
    them is raised instead of returning.
    """
    found: list[Diagnostic] = []
    ctx = Context(config, parameters, environment)
    try:
        result = _expand_input(value, ctx, path, found)[0]
    except RecursionError:  # an input nested thousands of levels deep
        report(found, path, [(_excerpt(value), "value nested too deeply")])
        result = value
    if diagnostics is not None:
        diagnostics.extend(found)
    if strict and found:
        raise MacroError(found)
    return result


def _expand_input(value: Any, ctx: Context, path: Path, found: list[Diagnostic]) -> tuple[Any, bool]:
    """Expand the caller's structure; returns (value, verbatim).

    Bounds (F4) are enforced per string of the input: one runaway value is
    reported and left as written, and the rest of a config still expands.
    """
    if isinstance(value, str):
        ctx.work = 0
        try:
            return expand_string(value, ctx, path, found)
        except BoundExceeded as exc:
            report(found, path, [(_excerpt(value), str(exc))])
        except RecursionError:
            report(found, path, [(_excerpt(value), "values nested too deeply")])
        return value, False
    if isinstance(value, list):
        return [_expand_input(v, ctx, (path, i), found)[0] for i, v in enumerate(value)], False
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = (path, k)
            if isinstance(k, str) and ("$" in k or "\\" in k):
                key = _expand_input(k, ctx, sub, found)[0]
                # Keys stay strings: IceProd would type "$(job)" as the int 7.
                k = key if isinstance(key, str) else to_text(key)
            out[k] = _expand_input(v, ctx, sub, found)[0]
        return out, False
    return value, False


def _excerpt(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def expand_scope(
    parameters: Mapping[str, Any] | None,
    *,
    outer: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    strict: bool = False,
    diagnostics: list[Diagnostic] | None = None,
    path: str = "",
) -> dict[str, Any]:
    """Merged parameters of an inner scope (steering → task → tray → module).

    A copy of ``outer`` overridden by this scope's ``parameters``; each of
    this scope's values is expanded, in order, against that merged table, so
    a value may refer to outer parameters and to its siblings (as IceProd's
    ``scope_env`` does). A value that names itself reads the outer scope's
    value of that name. Inputs are not modified.
    """
    merged: dict[str, Any] = dict(outer) if outer else {}
    if not parameters:
        return merged
    merged.update(parameters)
    found: list[Diagnostic] = []
    ctx = Context(config, merged, environment)
    for name, raw in parameters.items():
        if type(raw) is str and "$" not in raw and "\\" not in raw:
            typed = get_type(raw)  # most parameters are plain values: no context needed
            if not isinstance(typed, (list, dict)):
                merged[name] = typed
                continue
        elif not isinstance(raw, (str, list, dict)):
            continue
        if outer and name in outer:
            # "$eval($(n)*2)" in an inner scope means the outer n doubled
            # (IceProd would loop forever on its own raw value).
            merged[name] = outer[name]
        try:
            value, verbatim = _expand_input(raw, ctx, (path, name), found)
        except RecursionError:
            report(found, (path, name), [(_excerpt(raw), "value nested too deeply")])
            value, verbatim = raw, False
        # Keep a whole $sprintf a string when inner scopes use $(name) (F1).
        merged[name] = Verbatim(value) if verbatim and isinstance(value, str) else value
    if diagnostics is not None:
        diagnostics.extend(found)
    if strict and found:
        raise MacroError(found)
    return merged
