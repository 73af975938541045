"""The most expensive configs we know how to write, for the config-stall
test (tests/server/test_config_pool.py) and benchmarks/config_stall.py."""
from __future__ import annotations

from typing import Any


def exponential_parameters(levels: int = 26, tasks: int = 40) -> dict[str, Any]:
    """p1 = $(p0)$(p0), p2 = $(p1)$(p1), ...: every module argument doubles
    ``levels`` times; each value stays just under the per-value bound."""
    params = {"p0": "abcdefgh"}
    for i in range(1, levels):
        params[f"p{i}"] = f"$(p{i - 1})$(p{i - 1})"
    return {"version": 3.2, "steering": {"parameters": params}, "tasks": [
        {"name": f"t{k}", "trays": [{"modules": [{"src": "x.py", "args": f"$(p{levels - 1}) $(p{levels - 2})"}]}]}
        for k in range(tasks)]}


def many_iterations(iterations: int = 10**7) -> dict[str, Any]:
    """A tray run ten million times: each iteration is cheap, all of them are not."""
    return {"version": 3.2, "tasks": [{"name": "a", "trays": [
        {"iterations": iterations, "parameters": {"x": "$eval($(iter) * 2)"},
         "modules": [{"src": "x.py", "args": "$(x) $(iter)"}]}]}]}


def huge_evals(count: int = 1000) -> dict[str, Any]:
    """Thousands of $eval, each as long and as heavy as the bounds allow."""
    expression = "*".join(["9999999"] * 250)[:1990]
    return {"version": 3.2, "steering": {"parameters": {f"e{i}": f"$eval({expression})" for i in range(count)}},
            "tasks": [{"name": "a", "trays": [{"modules": [{"src": "x.py", "args": "$(e0)"}]}]}]}


def deep_nesting(levels: int = 60, tasks: int = 200) -> dict[str, Any]:
    """$sprintf nested 60 deep in every one of many tasks."""
    text = "x"
    for _ in range(levels):
        text = f"$sprintf('%s', '{text}')"
    return {"version": 3.2, "tasks": [{"name": f"t{k}", "trays": [{"modules": [{"src": "x.py", "args": text}]}]}
                                      for k in range(tasks)]}


WORST = {"exponential parameters": exponential_parameters, "ten million iterations": many_iterations,
         "huge $eval": huge_evals, "deep nesting": deep_nesting}
