"""Properties over random input: non-strict expansion never raises and
always ends; strict raises only MacroError; the fast paths agree with the
definitions they shortcut (IceProd's getType, textual $eval)."""
from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.macros import MacroError, expand, expand_scope
from common.macros.coercion import get_type

PIECES = [
    "$", "(", ")", "[", "]", "\\", "{", "}", "$(", "${", "$eval(", "$sprintf(", "$steering(", "$options(",
    "$choice(", "$len(", "$sum(", "$foo(", "$environ(", "$metadata(", "$system(", "job", "a", "b", "p",
    "list", "dict", "0", "1", "9", "-", "+", "*", "**", "//", "%", "^", "~", ",", "'", '"', "%d", "%s",
    "%06d", " ", "x", "/", ".", "e", "true", "null", "_h0",
]
texts = st.lists(st.sampled_from(PIECES), max_size=25).map("".join) | st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
CONFIG: dict[str, Any] = {
    "options": {"job": 7, "dataset": 12, "iter": 0},
    "steering": {"parameters": {"list": [1, 2], "dict": {"a": 1}, "p": "$(job)"}, "system": {"a": "b"}},
    "difplus": {"dif": {"a": 1}},
}
SLOW = settings(max_examples=300, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(value=json_values, params=st.dictionaries(st.sampled_from(["a", "b", "p", "job"]), texts, max_size=4))
def test_non_strict_never_raises(value: Any, params: dict[str, str]) -> None:
    before = json.dumps(value, sort_keys=True)
    expand(value, config=CONFIG, parameters=params, environment={"a": "$A"})
    expand_scope(params, outer={"a": 1}, config=CONFIG)
    assert json.dumps(value, sort_keys=True) == before


@SLOW
@given(value=json_values, params=st.dictionaries(st.sampled_from(["a", "b", "p"]), texts, max_size=3))
def test_strict_raises_only_macro_error(value: Any, params: dict[str, str]) -> None:
    found: list[Any] = []
    try:
        strict = expand(value, config=CONFIG, parameters=params, strict=True)
    except MacroError as exc:
        assert exc.diagnostics
        return
    lenient = expand(value, config=CONFIG, parameters=params, diagnostics=found)
    assert found == [] or all("$choice" in d.phrase for d in found)
    if "$choice(" not in json.dumps(value) + json.dumps(params):
        assert json.dumps(strict, sort_keys=True, default=str) == json.dumps(lenient, sort_keys=True, default=str)


def iceprod_get_type(output: Any) -> Any:
    """IceProd 3.1.3's getType, verbatim in behaviour (the oracle)."""
    try:
        if isinstance(output, str) and not (output.startswith('"') and output.endswith('"')):
            try:
                output = json.loads(output.replace("'", '"'))
            except Exception:
                if output.lower() == "true":
                    output = True
                elif output.lower() == "false":
                    output = False
                elif output.isdigit():
                    output = int(output)
                else:
                    output = float(output)
    except Exception:
        pass
    return output


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and json.dumps(a) == json.dumps(b)


number_texts = st.lists(
    st.sampled_from(list("0123456789.eE+-_ \t'\"[]{}:,") + ["true", "null", "NaN", "Infinity", "inf", "nan", "١"]),
    max_size=8,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=number_texts | st.text(max_size=12))
def test_get_type_matches_iceprod(text: str) -> None:
    assert same(get_type(text), iceprod_get_type(text))
    assert same(get_type(text), iceprod_get_type(text)), "cached answer differs"


hole_values = (
    st.integers(-10**6, 10**6) | st.floats(-1e6, 1e6, allow_nan=False) | st.booleans()
    | st.sampled_from(["600", "007", "-1", "1.5", "x", "", "1e3"])
)
operators = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "^", " ", "", "(", ")", "~", "e", "."])


@settings(max_examples=1500, deadline=None)
@given(
    parts=st.lists(st.one_of(operators, st.sampled_from(["$(a)", "${b}", "$(c)", "2", "3", "10"])), min_size=1, max_size=9),
    a=hole_values, b=hole_values, c=hole_values,
)
def test_compiled_eval_agrees_with_textual_eval(parts: list[str], a: Any, b: Any, c: Any) -> None:
    params = {"a": a, "b": b, "c": c}
    expr = "".join(parts)
    textual = expr
    for name, value in params.items():
        text = str(value)
        textual = textual.replace(f"$({name})", text).replace("${" + name + "}", text)
    fast = expand(f"$eval({expr})", parameters=params)
    slow = expand(f"$eval({textual})")  # no macros left: the textual path
    assert same(fast, slow), (expr, params)
