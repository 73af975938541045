"""Diagnostics name the phrase and its place; strict mode raises MacroError."""
from __future__ import annotations

from typing import Any

import pytest

from common.macros import Diagnostic, MacroError, expand, expand_scope

CONFIG: dict[str, Any] = {"options": {"job": 7}, "steering": {"parameters": {"x": 1}}}


def problems(value: Any, **kwargs: Any) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    expand(value, config=CONFIG, diagnostics=found, **kwargs)
    return found


@pytest.mark.parametrize(
    ("value", "phrase", "words"),
    [
        ("a/$(missing)/b", "$(missing)", "unknown name"),
        ("$foo(bar)", "$foo(bar)", "unknown macro function $foo"),
        ("$eval(1/0)", "$eval(1/0)", "ZeroDivisionError"),
        ("$eval(abs(1))", "$eval(abs(1))", "not basic arithmetic"),
        ("$sprintf(\"%d\",x)", "$sprintf(\"%d\",x)", "needs a number"),
        ("$sprintf(%s)", "$sprintf(%s)", "no arguments"),
        ("x $(job", "$(job", "unclosed"),
        ("$steering(nope)", "$steering(nope)", "no 'nope'"),
        ("$steering(x)[3]", "$steering(x)[3]", "cannot index"),
        ("$eval(9**9**9)", "$eval(9**9**9)", "too large"),
    ],
)
def test_each_kind_of_problem_is_reported(value: str, phrase: str, words: str) -> None:
    found = problems(value)
    assert len(found) == 1, found
    assert found[0].phrase == phrase
    assert words in found[0].message
    assert found[0].path == ""


@pytest.mark.parametrize("value", ["$MYVAR", "${MYVAR}/$(job)", "price \\$5", "(a)]", "$", "plain"])
def test_shell_variables_and_text_are_not_problems(value: str) -> None:
    assert problems(value) == []


def test_paths_follow_nested_positions() -> None:
    value = {"tasks": [{"name": "ok $(job)", "args": ["$(a)", {"k": "$(b)"}]}], "$(c)": 1}
    found = problems(value, path="config")
    assert [(d.path, d.phrase) for d in found] == [
        ("config['tasks'][0]['args'][0]", "$(a)"),
        ("config['tasks'][0]['args'][1]['k']", "$(b)"),
        ("config['$(c)']", "$(c)"),
    ]


def test_a_phrase_reported_once_though_parsed_on_every_pass() -> None:
    params = {"p": "$(q)", "q": "$(missing) and $(missing)"}
    found: list[Diagnostic] = []
    assert expand("$(p)", parameters=params, diagnostics=found) == "$(missing) and $(missing)"
    assert [d.phrase for d in found] == ["$(missing)"]


def test_strict_raises_macro_error_listing_every_problem() -> None:
    with pytest.raises(MacroError) as info:
        expand(["$(a)", "$(job)", "$eval(x)"], config=CONFIG, strict=True, path="config['v']")
    err = info.value
    assert isinstance(err, ValueError)
    assert [d.path for d in err.diagnostics] == ["config['v'][0]", "config['v'][2]"]
    text = str(err)
    assert "config['v'][0]: unknown name 'a' ($(a))" in text
    assert "config['v'][2]: $eval:" in text and "($eval(x))" in text


def test_strict_also_fills_the_given_list() -> None:
    found: list[Diagnostic] = []
    with pytest.raises(MacroError):
        expand("$(a)", strict=True, diagnostics=found)
    assert len(found) == 1


def test_strict_returns_the_value_when_all_is_well() -> None:
    assert expand("$(job)/$HOME", config=CONFIG, strict=True) == "7/$HOME"


def test_non_strict_never_raises_and_keeps_literals() -> None:
    assert expand("$(a)", strict=False) == "$(a)"
    assert expand("$eval(9**9**9)") == "$eval(9**9**9)"


def test_expand_scope_reports_with_parameter_paths() -> None:
    found: list[Diagnostic] = []
    merged = expand_scope(
        {"a": "$(nope)", "b": "$(a)"}, outer=None, diagnostics=found, path="config['steering']['parameters']"
    )
    assert merged == {"a": "$(nope)", "b": "$(nope)"}
    assert [d.path for d in found] == [
        "config['steering']['parameters']['a']",
        "config['steering']['parameters']['b']",
    ]
    with pytest.raises(MacroError):
        expand_scope({"a": "$(nope)"}, outer=None, strict=True)


def test_diagnostic_is_a_plain_record() -> None:
    d = Diagnostic("config['x']", "$(y)", "unknown name 'y'")
    assert str(d) == "config['x']: unknown name 'y' ($(y))"
    assert d == Diagnostic("config['x']", "$(y)", "unknown name 'y'")


def test_one_runaway_value_does_not_stop_the_others() -> None:
    found: list[Diagnostic] = []
    params = {"grow": "x$(grow)"}
    value = {"bad": "$(grow)", "good": ["$(job)", "$eval(9**9**9)", "$eval(2+2)"]}
    out = expand(value, config=CONFIG, parameters=params, diagnostics=found, path="c")
    assert out == {"bad": "$(grow)", "good": [7, "$eval(9**9**9)", 4]}
    assert [d.path for d in found] == ["c['bad']", "c['good'][1]"]


def test_values_too_large_to_print_are_reported_not_raised() -> None:
    found: list[Diagnostic] = []
    params = {"big": 10**5000, "many": [10**5000]}
    value = ["$(big)", "${big}/x", "$eval($(big)+1)", "$(many)", "$(big)[0]", "$(x)"]
    out = expand(value, config={"steering": {"parameters": {"x": 1}}}, parameters=params, diagnostics=found)
    assert out == ["$(big)", "${big}/x", "$eval($(big)+1)", "$(many)", "$(big)[0]", 1]
    assert [d.path for d in found] == ["[0]", "[1]", "[2]", "[3]", "[4]"]
    assert all("too large" in d.message for d in found)


def test_input_nested_thousands_deep_is_reported() -> None:
    value: Any = ["$(job)"]
    for _ in range(5000):
        value = [value]
    found: list[Diagnostic] = []
    assert expand(value, config=CONFIG, diagnostics=found) is value
    assert [d.message for d in found] == ["value nested too deeply"]
    merged = expand_scope({"deep": value, "ok": "$(job)"}, outer=None, config=CONFIG, diagnostics=found)
    assert merged["ok"] == 7 and merged["deep"] is value
