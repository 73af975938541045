"""The macro language beyond the compat vectors: the fixes F1–F8, lexing
corner cases, lookups, $eval and $sprintf rules."""
from __future__ import annotations

import json
from typing import Any

import pytest

from common.macros import expand

CONFIG: dict[str, Any] = {
    "version": 3.1,
    "options": {"dataset": 12345, "job": 7, "iter": 2, "debug": False},
    "steering": {
        "parameters": {
            "pad": "$sprintf('%06d',$(job))",
            "neg": -3,
            "word": "abc",
            "numtext": "600",
            "lst": [1, 2],
            "nested": {"a": ["$(job)"]},
            "interaction0": "NuGenCCNC",
        },
        "system": {},
    },
}


def run(value: Any, **kwargs: Any) -> Any:
    return expand(value, config=CONFIG, **kwargs)


def same(a: Any, b: Any) -> bool:
    return json.dumps(a) == json.dumps(b)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # F1: $sprintf yields a string, also through a parameter.
        ("$sprintf('%06d',$(job))", "000007"),
        ("$(pad)", "000007"),
        ("$steering(pad)", "000007"),
        ("x$(pad)", "x000007"),
        ("$sprintf('%d',$(job))", "7"),
        ("$sprintf(\"%.2f\",1)", "1.00"),
        # F2: an escaped dollar is literal in the final value.
        ("\\$(job)", "$(job)"),
        ("cost: \\$5 for $(job)", "cost: $5 for 7"),
        ("\\${job}", "${job}"),
        ("a\\\\b", "a\\b"),
        # F3: shell variables never stop expansion elsewhere.
        ("$(job)/$MYVAR", "7/$MYVAR"),
        ("literal $MYVAR and $(job)", "literal $MYVAR and 7"),
        ("$I3_BUILD/x/$(job)", "$I3_BUILD/x/7"),
        ("$HOME/x(1)/$(job)", "$HOME/x(1)/7"),
        ("$$/$(job)", "$$/7"),
        # F5: stray closers are text; unclosed phrases stay literal.
        ("$(job))", "7)"),
        ("a]b)$(job)", "a]b)7"),
        ("$(job", "$(job"),
        ("$eval($(job)+1", "$eval(7+1"),
        # F6: quotes respected, one repr.
        ("$sprintf(\"%s\",\"a,b\")", "a,b"),
        ("$sprintf('%s|%s', 'x, y', z)", "x, y|z"),
        ("$sprintf(\"%r\",\"x\")", "'x'"),
        ("$sprintf('%s-%s', a, b)", "a-b"),
        # F7: arithmetic only.
        ("$eval(True)", "$eval(True)"),
        ("$eval(\"abc\")", "$eval(\"abc\")"),
        ("$eval(not 1)", "$eval(not 1)"),
        ("$eval(__import__('os'))", "$eval(__import__('os'))"),
        ("$eval((1).real)", "$eval((1).real)"),
        ("$eval(1<<3)", "$eval(1<<3)"),
        ("$eval(2j)", "$eval(2j)"),
        ("$eval((-8)**0.5)", "$eval((-8)**0.5)"),
        # F8: ${name} is $(name) when the name is known.
        ("${job}", 7),
        ("${dataset}/${job}", "12345/7"),
        ("$steering(interaction${iter})", "$steering(interaction2)"),
        ("${NOPE}/$(job)", "${NOPE}/7"),
        ("${a b}", "${a b}"),
    ],
)
def test_fixes(value: str, expected: Any) -> None:
    assert same(run(value), expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # IceProd's textual semantics of $eval are kept, macro or not.
        ("$eval($(neg)**2)", -9),
        ("$eval(-3**2)", -9),
        ("$eval(2*$(neg))", -6),
        ("$eval(1$(job))", 17),
        ("$eval($(job)$(job))", 77),
        ("$eval($(job)e2)", 700.0),
        ("$eval($(numtext)+1)", 601),
        ("$eval($(word)+1)", "$eval(abc+1)"),
        ("$eval(_h0+$(job))", "$eval(_h0+7)"),
        ("$eval($(job)//2)", 3),
        ("$eval($(job)/0)", "$eval(7/0)"),
        ("$eval($eval($(job)*2)**2)", 196),
        ("$eval(2**0.5)", 2**0.5),
        ("$eval( 1 + 2 )", 3),
        ("$eval(0x10)", 16),
    ],
)
def test_eval(value: str, expected: Any) -> None:
    assert same(run(value), expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(word)[0]", "a"),
        ("$(lst)[1]", 2),
        ("$(lst)[$(lst)[0]]", 2),
        ("$(lst)[9]", "[1, 2][9]"),
        ("$(job)[0]", "7[0]"),
        ("x[1]", "x[1]"),
        ("$(nested)", {"a": [7]}),
        ("$(nested)[a][0]", 7),
        ("[$(job)]", [7]),
        ("{\"k\": \"$(job)\"}", {"k": 7}),
        ("(($(job)))", "((7))"),
        ("$", "$"),
        ("\\", ""),
        ("$()", "$()"),
        ("$foo bar(x)", "$foo bar(x)"),
        ("$(debug)", False),
        ("$(version)", 3.1),
        ("$(numtext)", 600),
        ("$options(job)", 7),
    ],
)
def test_syntax_and_lookups(value: str, expected: Any) -> None:
    assert same(run(value), expected)


def test_containers_keys_and_values() -> None:
    value = {"k$(job)": ["$(dataset)", {"n": "$eval(1+1)"}], "plain": 1.5, "t": (1, 2)}
    assert run(value) == {"k7": [12345, {"n": 2}], "plain": 1.5, "t": (1, 2)}
    assert run({"$(job)": 1}) == {"7": 1}, "keys stay strings"


def test_inputs_are_not_modified() -> None:
    before = json.dumps(CONFIG, sort_keys=True)
    value = {"a": ["$(pad)", "$(nested)"]}
    run(value)
    assert value == {"a": ["$(pad)", "$(nested)"]}
    assert json.dumps(CONFIG, sort_keys=True) == before


def test_parameters_shadow_options_but_keywords_do_not() -> None:
    params = {"job": "shadow"}
    assert expand("$(job)", config=CONFIG, parameters=params) == "shadow"
    assert expand("$options(job)", config=CONFIG, parameters=params) == 7
    assert expand("$args(job)", config=CONFIG, parameters=params) == 7


def test_environment_and_metadata() -> None:
    config = {"difplus": {"dif": {"a": "D"}, "plus": {"a": "P", "b": "B"}}}
    assert expand("$metadata(a)$metadata(b)", config=config) == "DB"
    assert expand("$environ(X)", environment={"X": "$X"}) == "$X"


def test_choice_picks_one_of_the_items() -> None:
    assert {expand("$choice(a,b,c)") for _ in range(50)} <= {"a", "b", "c"}


def test_sprintf_limits() -> None:
    assert run("$sprintf('%999999d',1)") == "$sprintf('%999999d',1)"
    assert run("$sprintf('%d%%',50)") == "50%"
    assert run("$sprintf('%x %o',255,8)") == "ff 10"
    assert run("$sprintf('%d', 12345678901234567890)") == "12345678901234567890"
    assert run("$sprintf(\"%d\"x,5)") == "$sprintf(\"%d\"x,5)"


def test_an_index_that_is_itself_an_indexing_parameter() -> None:
    """``$steering(dict)[$steering(choose)]`` with ``choose`` = ``$steering(array)[0]``:
    the key settles to the element (IceProd's result), not the macro's text."""
    params = {"dict": {"a": "A", "b": "B"}, "array": ["b", "a"], "choose": "$steering(array)[0]",
              "deeper": "$steering(dict)[$steering(choose)]"}
    config = {"version": 3.1, "options": {}, "steering": {"parameters": params}}
    assert expand("$steering(dict)[$steering(choose)]", config=config) == "B"
    assert expand("x $steering(dict)[$steering(choose)] y", config=config) == "x B y"
    assert expand("$steering(deeper)", config=config) == "B"
