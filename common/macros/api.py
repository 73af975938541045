"""The public entry points :func:`expand` and :func:`expand_scope`."""
from __future__ import annotations

from typing import Any, Mapping

from .coercion import Verbatim, get_type
from .context import BoundExceeded, Context, Path, report
from .errors import Diagnostic, MacroError
from .evaluator import expand_string, expand_value


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
    result = _expand_guarded(value, ctx, path, found)
    if diagnostics is not None:
        diagnostics.extend(found)
    if strict and found:
        raise MacroError(found)
    return _plain(result)


def _expand_guarded(value: Any, ctx: Context, path: Path, found: list[Diagnostic]) -> tuple[Any, bool] | Any:
    try:
        return expand_value(value, ctx, path, found)
    except BoundExceeded as exc:
        report(found, path, [(_excerpt(value), str(exc))])
        return value
    except RecursionError:
        report(found, path, [(_excerpt(value), "values nested too deeply")])
        return value


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _plain(value: Any) -> Any:
    # Verbatim is an internal marker; callers get ordinary strings.
    return str(value) if isinstance(value, Verbatim) else value


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
        sub = (path, name)
        ctx.work = 0  # the work bound is per value, not per scope
        if isinstance(raw, str):
            if "$" not in raw and "\\" not in raw:
                typed = get_type(raw)
                merged[name] = expand_value(typed, ctx, sub, found) if isinstance(typed, (list, dict)) else typed
                continue
            if outer and name in outer:
                # "$eval($(n)*2)" in an inner scope means the outer n doubled
                # (IceProd would loop forever on its own raw value).
                merged[name] = outer[name]
            try:
                value, verbatim = expand_string(raw, ctx, sub, found)
            except BoundExceeded as exc:
                report(found, sub, [(_excerpt(raw), str(exc))])
                merged[name] = raw
                continue
            except RecursionError:
                report(found, sub, [(_excerpt(raw), "values nested too deeply")])
                merged[name] = raw
                continue
            # Keep a whole $sprintf a string when inner scopes use $(name).
            merged[name] = Verbatim(value) if verbatim and isinstance(value, str) else value
        elif isinstance(raw, (list, dict)):
            merged[name] = _expand_guarded(raw, ctx, sub, found)
    if diagnostics is not None:
        diagnostics.extend(found)
    if strict and found:
        raise MacroError(found)
    return merged
