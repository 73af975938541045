"""Property tests: no input makes the config functions fail other than by design.

fill_defaults and validate may only raise ConfigError; check_config never
raises; inputs are never modified; and validate's one problem is always
among check_config's (both pick the same error at a spot).
"""
from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.config import ConfigError, ConfigProblem, check_config, fill_defaults, upgrade_config, validate
from common.config.validation import schema_problems
from tests.common.test_config_samples import config_with, minimal_task

SCALARS = (st.none() | st.booleans() | st.integers(-5, 10**20)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
KEYS = st.sampled_from([
    "version", "description", "options", "steering", "tasks", "name", "depends", "task_files", "data",
    "parameters", "batchsys", "requirements", "container", "token_scopes", "trays", "modules", "iterations",
    "src", "running_class", "args", "env_shell", "env_clear", "configs", "remote", "local", "type",
    "movement", "transfer", "cpu", "gpu", "memory", "disk", "time", "os", "site", "system",
]) | st.text(max_size=6)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=30)
VERSIONS = st.sampled_from([3, 3.1, 3.2, "3", "3.1", "3.2", 2, "x", None, True])


def _valid_config() -> dict[str, Any]:
    data = [{"type": "permanent", "remote": "osdf:///icecube/x.i3", "movement": "output"},
            {"type": "job_temp", "local": "tmp.i3"}]
    first = minimal_task("gen", data=data, requirements={"cpu": 2, "gpu": 1, "memory": "$eval(2)"})
    first["trays"][0]["modules"][0].update(args={"n": 1}, env_shell="/cvmfs/env.sh")
    config = config_with(first, minimal_task("prop", depends=["gen", "ds:0"]))
    config["steering"] = {"parameters": {"a": 1}, "batchsys": {"condor": {"x": "y"}}}
    return config


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found += _paths(sub, (*prefix, index))
    return found


def _exercise(config: Any) -> None:
    before = copy.deepcopy(config)
    problems = check_config(config)
    assert all(isinstance(p, ConfigProblem) and p.path.startswith("config") for p in problems)
    upgraded, _ = upgrade_config(config)  # what check_config checks: the config as 3.2 (as a submit does)
    try:
        filled = fill_defaults(upgraded)
    except ConfigError as err:
        assert err.problems and all(p in problems for p in err.problems)
        assert config == before
        return
    schema_only = schema_problems(filled)
    assert schema_only == problems[:len(schema_only)]
    try:
        validate(filled)
    except ConfigError as err:
        assert len(err.problems) == 1
        assert err.problems[0] in schema_only
    else:
        assert schema_only == []
    assert config == before


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, JSON, max_size=6), VERSIONS, st.booleans())
def test_random_configs(config: dict[str, Any], version: Any, set_version: bool) -> None:
    if set_version:
        config["version"] = version
    _exercise(config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_mutations_of_a_valid_config(data: st.DataObject) -> None:
    config = _valid_config()
    assert check_config(config) == []
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(config)))
        if not path:
            continue
        parent = config
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON)
    _exercise(config)


@given(JSON)
def test_anything_at_all(value: Any) -> None:
    _exercise(value)
