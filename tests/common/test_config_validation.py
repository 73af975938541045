"""validate(): IceProd's error text for each verified example of reference §2.7."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from common.config import ConfigError, ConfigProblem, fill_defaults, schema_version, validate
from tests.common.test_config_samples import config_with, minimal_task


def error_text(config: dict[str, Any]) -> str:
    """The message validate gives after default filling, as IceProd's submit does."""
    with pytest.raises(ConfigError) as info:
        validate(fill_defaults(config))
    assert len(info.value.problems) == 1
    return str(info.value)


def _module(**extra: Any) -> dict[str, Any]:
    task = minimal_task()
    task["trays"][0]["modules"][0].update(extra)
    return task


def _no_trays() -> dict[str, Any]:
    task = minimal_task()
    task["trays"] = []
    return task


T0 = "Validation error in config['tasks'][0]"
# One case per verified example of reference §2.7 (3.2), plus the third
# error_msg of the 3.2 data rules.
VERIFIED = [
    pytest.param(_module(foo=1), f"{T0}['trays'][0]['modules'][0]: Additional properties are not allowed "
                 "('foo' was unexpected)", id="unknown-module-key"),
    pytest.param(minimal_task(data=[{"type": "permanent"}]),
                 f"{T0}['data'][0]['remote']: '' is too short", id="permanent-without-remote"),
    pytest.param(minimal_task(data=[{"type": "job_temp", "remote": "gsiftp://x/y", "local": "file.i3"}]),
                 f"{T0}['data'][0]['remote']: remote should be empty when type is temporary",
                 id="job-temp-with-remote"),
    pytest.param(minimal_task(task_files=True),
                 f"{T0}['token_scopes']: token_scopes are required when task_files=true",
                 id="task-files-without-scopes"),
    pytest.param(minimal_task(data=[{"type": "permanent", "remote": "a/b/c.i3", "transfer": "perhaps"}]),
                 f"{T0}['data'][0]['transfer']: 'perhaps' is not one of "
                 "[True, False, 'maybe', 'yes', 'no', 'y', 'n', '1', '0', 1, 0]", id="transfer-perhaps"),
    pytest.param(_no_trays(), f"{T0}['trays']: [] should be non-empty", id="empty-trays"),
    pytest.param(minimal_task(requirements={"cpu": "2"}),
                 f"{T0}['requirements']['cpu']: '2' is not of type 'integer'", id="cpu-string"),
    pytest.param(minimal_task(data=[{"type": "site_temp", "local": "x"}]),
                 f"{T0}['data'][0]['local']: local is required when type is temporary", id="temp-short-local"),
]


@pytest.mark.parametrize(("task", "expected"), VERIFIED)
def test_verified_iceprod_error_text(task: dict[str, Any], expected: str) -> None:
    assert error_text(config_with(task)) == expected


def test_unfilled_permanent_data_uses_the_then_message() -> None:
    # Without default filling remote is missing: the 'required' failure sits in
    # the 'then' subschema, whose error_msg is used.
    config = config_with(minimal_task(data=[{"type": "permanent"}]))
    config["description"] = "no defaults filled"
    with pytest.raises(ConfigError, match=r"\['data'\]\[0\]: remote is required when type=permanent$"):
        validate(config)


def test_short_token_scope_uses_jsonschema_text() -> None:
    task = minimal_task(task_files=True, token_scopes={"osdf:///icecube": "short"})
    assert error_text(config_with(task)) == (
        "Validation error in config['tasks'][0]['token_scopes']['osdf:///icecube']: 'short' is too short")


def test_task_files_with_scopes_is_valid() -> None:
    task = minimal_task(task_files=True, token_scopes={"osdf:///icecube/wipac": "storage.read:/data/sim"})
    validate(fill_defaults(config_with(task)))


def test_the_shallowest_error_wins_like_jsonschema_validate() -> None:
    task = minimal_task(requirements={"cpu": "2"})
    del task["name"]
    assert error_text(config_with(task)) == "Validation error in config['tasks'][0]: 'name' is a required property"


def test_path_of_an_anyof_branch_is_absolute() -> None:
    # IceProd printed config[1] here (the path relative to 'args').
    task = minimal_task()
    task["trays"][0]["modules"][0]["args"] = ["a", 5]
    text = error_text(config_with(task))
    assert text.startswith("Validation error in config['tasks'][0]['trays'][0]['modules'][0]['args']")


def test_steering_rejects_unknown_keys_but_accepts_legacy_system() -> None:
    config = config_with(minimal_task())
    config["steering"] = {"system": {"gcd": "/data/gcd.i3"}, "batchsys": {"condor": {"x": 1}}}
    validate(fill_defaults(config))
    config["steering"]["resources"] = {}
    assert error_text(config) == (
        "Validation error in config['steering']: Additional properties are not allowed ('resources' was unexpected)")


def test_legacy_task_keys_and_top_level_keys_pass() -> None:
    config = config_with(minimal_task(classes=[], resources=[], projects=[]), version=3)
    config.update(difplus={}, categories=[], dataset=0, parent_id=None)
    validate(fill_defaults(config))


def test_version_31_lacks_the_32_data_rules_and_keeps_tray_data() -> None:
    task = minimal_task(task_files=True, data=[{"type": "permanent"}])
    task["trays"][0]["data"] = [{"type": "job_temp", "remote": "r/e/m", "local": "x"}]
    task["trays"][0]["modules"][0]["whatever"] = 1
    validate(fill_defaults(config_with(task, version=3.1)))


def test_tray_and_module_data_is_a_frazil_extension_in_32() -> None:
    task = minimal_task()
    task["trays"][0]["data"] = [{"type": "job_temp", "movement": "output", "local": "out.i3"}]
    task["trays"][0]["modules"][0]["data"] = [{"type": "job_temp", "local": "x"}]
    assert error_text(config_with(task)) == (
        "Validation error in config['tasks'][0]['trays'][0]['modules'][0]['data'][0]['local']: "
        "local is required when type is temporary")


def test_string_version_is_read_as_a_number_without_touching_the_input() -> None:
    config = fill_defaults(config_with(minimal_task(), version="3.2"))
    before = copy.deepcopy(config)
    validate(config)
    assert config == before and config["version"] == "3.2"


def test_empty_tasks_are_valid() -> None:
    validate(fill_defaults({"version": 3.2, "tasks": []}))


@pytest.mark.parametrize(("version", "expected"), [
    (3, "3.1"), ("3", "3.1"), (3.0, "3.1"), (3.1, "3.1"), ("3.1", "3.1"), (3.2, "3.2"), ("3.2", "3.2"),
    (" 3.2 ", "3.2"),
])
def test_schema_version_accepts(version: Any, expected: str) -> None:
    assert schema_version({"version": version}) == expected


@pytest.mark.parametrize("version", [2, 3.3, 4, "abc", "", None, True, [3.2], {"v": 3}, float("nan")])
def test_schema_version_refuses(version: Any) -> None:
    with pytest.raises(ConfigError) as info:
        schema_version({"version": version})
    assert info.value.problems[0].path == "config['version']"
    assert "unsupported config version" in str(info.value)


def test_schema_version_needs_an_object_with_a_version() -> None:
    with pytest.raises(ConfigError, match=r"^Validation error in config: 'version' is a required property$"):
        schema_version({"tasks": []})
    with pytest.raises(ConfigError, match="is not of type 'object'"):
        schema_version([1, 2])


def test_validate_refuses_an_unsupported_version() -> None:
    with pytest.raises(ConfigError, match=r"config\['version'\]"):
        validate({"version": 2, "tasks": []})


def test_problem_and_error_text() -> None:
    problem = ConfigProblem("config['tasks'][0]", "boom")
    assert str(problem) == "Validation error in config['tasks'][0]: boom"
    error = ConfigError([problem, ConfigProblem("config", "two")])
    assert isinstance(error, ValueError)
    assert str(error) == "Validation error in config['tasks'][0]: boom\nValidation error in config: two"
    with pytest.raises(ValueError):
        ConfigError([])
