"""check_config(): every problem at once, schema problems plus frazil's checks."""
from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest

from common.config import ConfigProblem, check_config, fill_defaults, validate
from tests.common.test_config_samples import config_with, minimal_task, tutorial_config


def messages(config: Any) -> list[str]:
    return [str(p) for p in check_config(config)]


def test_tutorial_config_has_no_problems(shared_dir: pathlib.Path) -> None:
    config = tutorial_config(shared_dir)
    assert check_config(config) == []
    validate(fill_defaults(config))
    # It is a valid 3.2 config too: nothing in it needs the laxer 3.1 schema.
    config["version"] = 3.2
    assert check_config(config) == []


def test_tutorial_depends_example() -> None:
    config = config_with(minimal_task("generation"), minimal_task("propagation", depends=["generation"]))
    assert check_config(config) == []


def test_cross_dataset_depends() -> None:
    config = config_with(minimal_task("propagation", depends=[
        "632bbe3ecb8611eea1dd00505684797b:generation", "632bbe3ecb8611eea1dd00505684797b:0"]))
    assert check_config(config) == []


@pytest.mark.parametrize("dep", [":generation", "632bbe3e:", " : "])
def test_malformed_cross_dataset_depends(dep: str) -> None:
    assert messages(config_with(minimal_task("a", depends=[dep]))) == [
        f"Validation error in config['tasks'][0]['depends'][0]: malformed cross-dataset dependency {dep!r} "
        "(expected '<dataset_id>:<task name or index>')"]


def test_unknown_and_later_depends() -> None:
    config = config_with(minimal_task("a", depends=["b"]), minimal_task("b", depends=["nope"]))
    assert messages(config) == [
        "Validation error in config['tasks'][0]['depends'][0]: depends on a later task 'b' (task 1); "
        "a task may only depend on tasks listed before it",
        "Validation error in config['tasks'][1]['depends'][0]: depends on unknown task 'nope'",
    ]


def test_two_task_cycle_is_reported_where_it_closes() -> None:
    config = config_with(minimal_task("a", depends=["b"]), minimal_task("b", depends=["a"]))
    assert check_config(config) == [
        ConfigProblem("config['tasks'][0]['depends'][0]", "dependency cycle: a -> b -> a")]


def test_longer_cycle_and_self_dependency() -> None:
    config = config_with(
        minimal_task("a", depends=["c"]), minimal_task("b", depends=["a"]),
        minimal_task("c", depends=["b"]), minimal_task("d", depends=["d"]))
    assert check_config(config) == [
        ConfigProblem("config['tasks'][0]['depends'][0]", "dependency cycle: a -> c -> b -> a"),
        ConfigProblem("config['tasks'][3]['depends'][0]", "dependency cycle: d -> d"),
    ]


def test_duplicate_task_names() -> None:
    config = config_with(minimal_task("a"), minimal_task("b"), minimal_task("a"), minimal_task("a"))
    assert check_config(config) == [
        ConfigProblem("config['tasks'][2]['name']", "duplicate task name 'a' (task 0 has the same name)"),
        ConfigProblem("config['tasks'][3]['name']", "duplicate task name 'a' (task 0 has the same name)"),
    ]


@pytest.mark.parametrize("requirements", [
    {"cpu": 1, "gpu": 0, "memory": 0.5, "disk": 10, "time": 1e-3},
    {"cpu": 16, "gpu": 2, "memory": "$eval(2*$(iter)+1)", "disk": "$steering(disk)", "time": "${hours}"},
    {"os": ["RHEL_7_x86_64", "RHEL_9_x86_64"], "site": "WIPAC"},
    {"memory": "4GB", "disk": "512MB", "time": "1h30m"},  # unit strings (docs/config.md)
    {"memory": "2", "time": "1.5"},  # a number written as a string
])
def test_requirements_in_range(requirements: dict[str, Any]) -> None:
    assert check_config(config_with(minimal_task(requirements=requirements))) == []


@pytest.mark.parametrize(("key", "value", "message"), [
    ("cpu", 0, "cpu: must be at least 1, got 0"),
    ("gpu", -1, "gpu: expected a whole number >= 0, got -1"),
    ("memory", 0, "memory: must be greater than 0 (GB), got 0"),
    ("disk", -2.5, "disk: must be greater than 0 (GB), got -2.5"),
    ("memory", "4 lots", "memory: cannot read size '4 lots'; use a number of GB or e.g. '4GB', '512MB', '2G'"),
    ("time", "2 fortnights", "time: cannot read duration '2 fortnights': unknown unit 'fortnights'"),
    ("time", "0m", "time: must be greater than 0 (hours), got '0m'"),
    ("cpu", "$eval(2)", "'$eval(2)' is not of type 'integer'"),
    ("gpu", 1.5, "1.5 is not of type 'integer'"),
    ("memory", True, "True is not valid under any of the given schemas"),
    ("os", "RHEL_7_x86_64", "'RHEL_7_x86_64' is not of type 'array'"),
    ("site", 3, "3 is not of type 'string'"),
])
def test_requirements_out_of_range(key: str, value: Any, message: str) -> None:
    config = config_with(minimal_task(requirements={key: value}))
    assert check_config(config) == [ConfigProblem(f"config['tasks'][0]['requirements'][{key!r}]", message)]


def test_module_needs_src_or_running_class() -> None:
    task = minimal_task()
    task["trays"][0]["modules"] = [{"src": "a.py"}, {"running_class": "icecube.simprod.Gen"}, {"name": "x"},
                                   {"src": "  "}]
    assert check_config(config_with(task)) == [
        ConfigProblem("config['tasks'][0]['trays'][0]['modules'][2]", "module needs 'src' (or legacy 'running_class')"),
        ConfigProblem("config['tasks'][0]['trays'][0]['modules'][3]", "module needs 'src' (or legacy 'running_class')"),
    ]


def test_all_problems_at_once_schema_first_in_document_order() -> None:
    bad = minimal_task("a", depends=["zzz"], requirements={"cpu": 0, "memory": "x"})
    bad["trays"][0]["modules"][0]["foo"] = 1
    bad["data"] = [{"type": "job_temp", "remote": "r/e/m", "local": "ok.i3"}, {"type": "permanent"}]
    config = config_with(minimal_task("a"), bad)
    config["steering"] = {"junk": 1}
    assert messages(config) == [
        "Validation error in config['steering']: Additional properties are not allowed ('junk' was unexpected)",
        "Validation error in config['tasks'][1]['data'][0]['remote']: remote should be empty when type is temporary",
        "Validation error in config['tasks'][1]['data'][1]['remote']: '' is too short",
        "Validation error in config['tasks'][1]['trays'][0]['modules'][0]: "
        "Additional properties are not allowed ('foo' was unexpected)",
        "Validation error in config['tasks'][1]['name']: duplicate task name 'a' (task 0 has the same name)",
        "Validation error in config['tasks'][1]['depends'][0]: depends on unknown task 'zzz'",
        "Validation error in config['tasks'][1]['requirements']['cpu']: cpu: must be at least 1, got 0",
        "Validation error in config['tasks'][1]['requirements']['memory']: "
        "memory: cannot read size 'x'; use a number of GB or e.g. '4GB', '512MB', '2G'",
    ]


def test_validate_reports_one_of_the_check_config_problems() -> None:
    task = minimal_task(requirements={"cpu": "2"}, data=[{"type": "permanent", "transfer": 2.5}])
    config = config_with(task)
    with pytest.raises(Exception) as info:
        validate(fill_defaults(config))
    problems = check_config(config)
    assert str(info.value) in [str(p) for p in problems]
    # transfer 2.5 fails both anyOf and enum at one spot: reported once.
    assert [p.path for p in problems].count("config['tasks'][0]['data'][0]['transfer']") == 1


def test_missing_tasks_and_not_an_object() -> None:
    assert messages({"version": 3.2}) == ["Validation error in config: 'tasks' is a required property"]
    assert messages([]) == ["Validation error in config: [] is not of type 'object'"]


def test_unsupported_version_still_runs_structural_checks() -> None:
    config = config_with(minimal_task("a"), minimal_task("a"), version="9")
    assert messages(config) == [
        "Validation error in config['version']: unsupported config version '9' "
        "(supported: 3 (read as 3.1), 3.1, 3.2)",
        "Validation error in config['tasks'][1]['name']: duplicate task name 'a' (task 0 has the same name)",
    ]
    assert messages({"version": None})[-1] == "Validation error in config: 'tasks' is a required property"


def test_legacy_version_3_config_with_system_and_running_class() -> None:
    task = minimal_task("Task0", classes=[{"name": "x"}], resources=[])
    task["trays"][0]["modules"] = [{"running_class": "icecube.simprod.modules.Corsika", "args": {"nevents": 10}}]
    config = config_with(task, version=3)
    config["steering"] = {"system": {"gcd": "/cvmfs/gcd.i3.gz"}, "parameters": {"seed": 1}}
    config["difplus"] = {}
    assert check_config(config) == []
    config["steering"]["resources"] = []
    assert messages(config) == [
        "Validation error in config['steering']: Additional properties are not allowed ('resources' was unexpected)"]


def test_check_config_does_not_mutate_its_input() -> None:
    config = config_with(minimal_task("a", depends=["a"]), version="3.2")
    before = copy.deepcopy(config)
    check_config(config)
    assert config == before
