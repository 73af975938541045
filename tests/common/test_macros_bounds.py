"""F4: expansion is bounded. Each case runs in a child process with a
timeout, so a regression fails the test instead of hanging the suite
(a huge ``**`` holds the GIL, so a thread could not be timed out)."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

# Runs in the child: expand each case, print what came back and the diagnostics.
CHILD = r"""
import json, sys
from common.macros import expand, expand_scope, MacroError
cases = json.loads(sys.stdin.read())
out = []
for case in cases:
    found = []
    if case["kind"] == "expand":
        value = expand(case["value"], parameters=case.get("parameters"), diagnostics=found)
    else:
        value = expand_scope(case["value"], outer=None, diagnostics=found)
    try:
        expand(case["value"] if case["kind"] == "expand" else "$(a)",
               parameters=case.get("parameters") or case["value"], strict=True)
        strict = "no error"
    except MacroError as exc:
        strict = "MacroError"
    out.append({"value": value, "messages": [d.message for d in found], "strict": strict})
print(json.dumps(out))
"""

CASES: list[dict[str, Any]] = [
    {"kind": "expand", "value": "$eval(9**9**9)"},
    {"kind": "expand", "value": "$eval(9**9**7)"},
    {"kind": "expand", "value": "$eval(2**100000)"},
    {"kind": "expand", "value": "$eval(10**4000*10**4000)"},
    {"kind": "expand", "value": "$eval((10**1000)**10)"},
    {"kind": "expand", "value": "$eval(" + "(" * 5000 + "1" + ")" * 5000 + ")"},
    {"kind": "expand", "value": "$(a)", "parameters": {"a": "x$(a)"}},
    {"kind": "expand", "value": "$(a)", "parameters": {"a": "$(a)$(a)"}},
    {"kind": "expand", "value": "$(a)", "parameters": {"a": ["$(a)", "$(a)"]}},
    {"kind": "expand", "value": "$(a)", "parameters": {"a": "$(b)", "b": "$(a)x"}},
    {"kind": "expand", "value": "$sprintf('%999999999d',1)"},
    {"kind": "scope", "value": {"a": "x$(a)"}},
    # Hostile input: must be parsed in linear time, and is refused or reported.
    {"kind": "expand", "value": "$(" * 100_000},
    {"kind": "expand", "value": "$(a)" + "[0]" * 100_000},
    {"kind": "expand", "value": "$eval(" * 50_000 + "1" + ")" * 50_000},
    {"kind": "expand", "value": "$(job)" * 20_000},
]
# Strings that must merely come back promptly (they hold no macro problem).
HARMLESS: list[str] = ["${" * 100_000, "\\" * 300_000, "(" * 200_000 + ")" * 100_000, "$" * 300_000]


def run_child(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], input=json.dumps(cases), capture_output=True, text=True,
        cwd=REPO, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def results() -> list[dict[str, Any]]:
    return run_child(CASES)


def test_harmless_hostile_strings_come_back_unchanged() -> None:
    out = run_child([{"kind": "expand", "value": v} for v in HARMLESS])
    assert [r["value"] for r in out] == [v.replace("\\\\", "\\") for v in HARMLESS]
    assert all(r["messages"] == [] and r["strict"] == "no error" for r in out)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{i}:{str(c['value'])[:30]}" for i, c in enumerate(CASES)])
def test_bounded_case_fails_cleanly(results: list[dict[str, Any]], index: int) -> None:
    case, result = CASES[index], results[index]
    assert result["messages"], f"no diagnostic for {case}"
    assert result["strict"] == "MacroError"
    if case["kind"] == "expand":
        assert result["value"] == case["value"], "a value that cannot be expanded is left as written"
    else:
        assert result["value"] == case["value"]


def test_messages_say_which_bound(results: list[dict[str, Any]]) -> None:
    by_value = {str(c["value"]): r["messages"] for c, r in zip(CASES, results)}
    assert "too large" in by_value["$eval(9**9**9)"][0]
    grow = [r["messages"][0] for c, r in zip(CASES, results) if c.get("parameters") == {"a": "x$(a)"}][0]
    assert "did not settle after 20 passes" in grow
