"""fill_defaults(): IceProd's defaults, inserted as copies, input untouched."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from common.config import ConfigError, fill_defaults, load_schema

# Reference §2.7: the fully defaulted minimal task (version 3.2).
MINIMAL_FILLED: dict[str, Any] = {
    "version": 3.2,
    "description": "Test Dataset",
    "options": {},
    "steering": {"parameters": {}, "batchsys": {}, "data": []},
    "tasks": [{
        "name": "t",
        "depends": [],
        "task_files": False,
        "data": [{"type": "permanent", "remote": "", "local": "", "movement": "input", "transfer": True}],
        "parameters": {},
        "batchsys": {},
        "requirements": {"cpu": 1, "memory": 1.0, "disk": 1.0, "time": 1.0, "os": []},
        "container": "",
        "token_scopes": {},
        "trays": [{
            "name": "",
            "iterations": 1,
            "parameters": {},
            "modules": [{
                "src": "run.py",
                "name": "",
                "parameters": {},
                "running_class": "",
                "args": "",
                "env_shell": "",
                "env_clear": True,
                "configs": {},
            }],
        }],
    }],
}


def minimal() -> dict[str, Any]:
    return {"version": 3.2, "tasks": [{
        "name": "t", "data": [{"type": "permanent"}], "trays": [{"modules": [{"src": "run.py"}]}]}]}


def test_minimal_task_is_filled_exactly_like_iceprod() -> None:
    assert fill_defaults(minimal()) == MINIMAL_FILLED


def test_input_is_not_mutated_and_output_shares_nothing() -> None:
    config = minimal()
    config["steering"] = {"parameters": {"shared": [1, 2]}}
    config["tasks"].append(copy.deepcopy(config["tasks"][0]) | {"name": "u"})
    before = copy.deepcopy(config)
    filled = fill_defaults(config)
    assert config == before
    filled["steering"]["parameters"]["shared"].append(3)
    assert config["steering"]["parameters"]["shared"] == [1, 2]
    # Defaults are copies: two tasks never share one dict.
    filled["tasks"][0]["parameters"]["x"] = 1
    filled["tasks"][0]["requirements"]["os"].append("RHEL_7_x86_64")
    assert filled["tasks"][1]["parameters"] == {}
    assert filled["tasks"][1]["requirements"]["os"] == []
    assert fill_defaults(config)["tasks"][0]["requirements"]["os"] == []


def test_user_values_are_kept() -> None:
    config = minimal()
    config["tasks"][0]["requirements"] = {"cpu": 4, "gpu": 1, "memory": "$eval(2*2)"}
    config["tasks"][0]["data"][0].update(remote="osdf:///x/y.i3", transfer="maybe")
    task = fill_defaults(config)["tasks"][0]
    assert task["requirements"] == {"cpu": 4, "gpu": 1, "memory": "$eval(2*2)", "disk": 1.0, "time": 1.0, "os": []}
    assert task["data"][0]["remote"] == "osdf:///x/y.i3" and task["data"][0]["transfer"] == "maybe"


def test_gpu_and_site_have_no_default() -> None:
    req = fill_defaults(minimal())["tasks"][0]["requirements"]
    assert "gpu" not in req and "site" not in req


def test_missing_version_is_filled_with_31_like_iceprod() -> None:
    filled = fill_defaults({"tasks": [{"name": "t", "trays": [{"modules": [{}]}]}]})
    assert filled["version"] == 3.1
    tray = filled["tasks"][0]["trays"][0]
    # The 3.1 schema still has the deprecated tray/module data, with its default.
    assert tray["data"] == [] and tray["modules"][0]["data"] == []


def test_version_3_is_filled_with_the_31_schema() -> None:
    filled = fill_defaults({"version": 3, "tasks": []})
    assert filled["version"] == 3 and filled["steering"] == {"parameters": {}, "batchsys": {}, "data": []}


def test_32_trays_and_modules_get_no_data_key() -> None:
    tray = fill_defaults(minimal())["tasks"][0]["trays"][0]
    assert "data" not in tray and "data" not in tray["modules"][0]


def test_tray_data_given_in_32_is_filled() -> None:
    config = minimal()
    config["tasks"][0]["trays"][0]["data"] = [{"type": "job_temp", "local": "out.i3"}]
    item = fill_defaults(config)["tasks"][0]["trays"][0]["data"][0]
    assert item == {"type": "job_temp", "local": "out.i3", "remote": "", "movement": "input", "transfer": True}


def test_values_of_the_wrong_type_are_left_for_validation() -> None:
    assert fill_defaults({"version": 3.2, "tasks": "nope"})["tasks"] == "nope"
    tasks = fill_defaults({"version": 3.2, "tasks": [1, None, [], {"trays": {"modules": 3}}]})["tasks"]
    assert tasks[:3] == [1, None, []]
    assert tasks[3]["trays"] == {"modules": 3} and tasks[3]["depends"] == []
    filled = fill_defaults({"version": 3.2, "steering": [],
                            "tasks": [{"requirements": [], "data": {}, "depends": [{}]}]})
    assert filled["steering"] == []
    task = filled["tasks"][0]
    assert task["requirements"] == [] and task["data"] == {} and task["depends"] == [{}]


def test_not_an_object_or_bad_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not of type 'object'"):
        fill_defaults([])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"config\['version'\]: unsupported config version 4"):
        fill_defaults({"version": 4, "tasks": []})


@pytest.mark.parametrize("version", ["3.1", "3.2"])
def test_schemas_are_valid_draft_2020_12_and_load_schema_returns_copies(version: str) -> None:
    schema = load_schema(version)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["version"]["default"] == float(version)
    schema["properties"].clear()
    assert load_schema(version)["properties"]


def test_load_schema_accepts_version_3_and_refuses_others() -> None:
    assert load_schema(3) == load_schema("3.1")
    with pytest.raises(ConfigError):
        load_schema("2.0")
