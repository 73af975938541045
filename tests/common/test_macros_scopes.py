"""Scopes, runtime options, and the tutorial's steering block expanded for
real jobs (../shared/reference/iceprod-tutorial-2024.txt)."""
from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import pytest

from common.macros import Diagnostic, expand, expand_scope, runtime_options

TUTORIAL = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "iceprod-tutorial-2024.txt"


def tutorial_steering() -> dict[str, Any]:
    """The steering parameters of the tutorial's two JSON blocks, merged.

    The text was copied from slides: one string (TARGET) is broken over two
    lines and the second block ends with a comma; both are repaired here.
    """
    text = TUTORIAL.read_text()
    merged: dict[str, Any] = {}
    for block in re.findall(r"```\n(.*?)```", text, flags=re.S):
        if '"parameters"' not in block or '"steering"' not in block:
            continue
        lines: list[str] = []
        for line in block.splitlines():
            if lines and lines[-1].count('"') % 2 == 1:  # inside a string: join
                lines[-1] += line.strip()
            else:
                lines.append(line)
        source = "\n".join(lines).strip().rstrip(",")
        merged.update(json.loads(source)["steering"]["parameters"])
    return merged


STEERING = tutorial_steering()
CONFIG = {"version": 3, "options": {}, "steering": {"parameters": STEERING}}
TARGET_BASE = "gsiftp://gridftp.icecube.wisc.edu/data/sim/IceCube/2023/filtered/level2/neutrino-generator/22634/"


def steering_for(job: int, iter: int = 0, diagnostics: list[Diagnostic] | None = None) -> dict[str, Any]:  # noqa: A002
    options = runtime_options(
        CONFIG, dataset=22634, dataset_id="d22634", job=job, jobs_submitted=100, task="generation",
        task_id="t1", iter=iter,
    )
    return expand_scope(
        STEERING, outer=None, config={**CONFIG, "options": options}, diagnostics=diagnostics,
        path="config['steering']['parameters']",
    )


def test_tutorial_block_was_read_whole() -> None:
    assert len(STEERING) == 23
    assert STEERING["TARGET"].endswith("level2/neutrino-generator/$(dataset)/$steering(subdirectory)")


@pytest.mark.parametrize("job", [0, 1, 999, 1000, 1234, 99_999])
def test_tutorial_steering_expands_as_a_physicist_expects(job: int) -> None:
    found: list[Diagnostic] = []
    p = steering_for(job, diagnostics=found)
    assert found == []
    seed = (22634 % 20000) * 10000 + job * 10 + 0
    first = job // 1000 * 1000
    subdirectory = f"{first:07d}-{first + 999:07d}"
    assert p["seed"] == seed and p["CORSIKA::seed"] == seed
    assert p["CORSIKA::run"] == (22634 * 100000 + job) % 100_000_000 + 1
    assert p["CORSIKA::showers"] == 6000 * 50
    assert p["CORSIKA::eprimarymax"] == 10**11 and type(p["CORSIKA::eprimarymax"]) is int
    assert p["CORSIKA::eprimarymin"] == 600  # IceProd types "600" as a number
    assert p["GENERATION::this_interaction"] == "NuGenCCNC"
    assert p["subdirectory"] == subdirectory and isinstance(p["subdirectory"], str)
    assert p["TARGET"] == TARGET_BASE + subdirectory
    assert p["outfile"] == f"NuGen_{job}.i3.zst"
    assert p["env_path"] == STEERING["env_path"]
    assert p["GENERATION::gamma"] == 1.5


def test_job_zero_values() -> None:
    p = steering_for(0)
    assert (p["seed"], p["CORSIKA::run"], p["subdirectory"]) == (26340000, 63400001, "0000000-0000999")
    assert p["TARGET"].endswith("/22634/0000000-0000999")


def test_undefined_iteration_is_reported() -> None:
    found: list[Diagnostic] = []
    p = steering_for(5, iter=1, diagnostics=found)
    assert p["GENERATION::this_interaction"] == "$steering(GENERATION::interaction1)"
    assert [(d.path, d.phrase) for d in found] == [
        ("config['steering']['parameters']['GENERATION::this_interaction']", "$steering(GENERATION::interaction1)")
    ]


def test_tutorial_module_args_expand_in_task_scope() -> None:
    options = runtime_options(CONFIG, dataset=22634, dataset_id="d", job=7, jobs_submitted=10, iter=0)
    config = {**CONFIG, "options": options}
    steering = expand_scope(STEERING, outer=None, config=config)
    args = {"FromEnergy": 10000, "nevents": 10000, "outputfile": "$steering(outfile)"}
    assert expand(args, config=config, parameters=steering) == {
        "FromEnergy": 10000, "nevents": 10000, "outputfile": "NuGen_7.i3.zst"
    }
    remote = expand("$steering(TARGET)/$steering(outfile)", config=config, parameters=steering)
    assert remote == TARGET_BASE + "0000000-0000999/NuGen_7.i3.zst"


def test_chained_parameters_reach_the_value() -> None:
    assert expand_scope({"a": "$(b)", "b": "$(c)", "c": "$eval(2*21)"}, outer=None) == {"a": 42, "b": 42, "c": 42}


def test_scopes_nest_steering_task_tray_module() -> None:
    config = {"options": {"job": 3}}
    steering = expand_scope({"base": "/data/$(job)", "n": 10}, outer=None, config=config)
    task = expand_scope({"dir": "$(base)/task", "n": "$eval($(n)*2)"}, outer=steering, config=config)
    tray = expand_scope({"file": "$(dir)/f_$(n).i3"}, outer=task, config=config)
    module = expand_scope({"arg": "--in=$(file)", "base": "override"}, outer=tray, config=config)
    assert task["n"] == 20 and steering["n"] == 10
    assert tray["file"] == "/data/3/task/f_20.i3"
    assert module["arg"] == "--in=/data/3/task/f_20.i3"
    assert module["base"] == "override" and tray["base"] == "/data/3"


def test_scope_values_see_the_outer_scope_not_later_overrides() -> None:
    outer = expand_scope({"x": "outer"}, outer=None)
    inner = expand_scope({"y": "$(x)", "x": "inner"}, outer=outer)
    # IceProd's scope_env copies this scope's raw values first, so a sibling wins.
    assert inner == {"x": "inner", "y": "inner"}
    assert outer == {"x": "outer"}


def test_sprintf_parameter_keeps_its_padding_in_inner_scopes() -> None:
    config = {"options": {"job": 7}}
    steering = expand_scope({"pad": "$sprintf('%06d',$(job))"}, outer=None, config=config)
    assert steering["pad"] == "000007"
    module = expand_scope({"name": "$(pad)", "file": "f_$(pad).i3"}, outer=steering, config=config)
    assert module["name"] == "000007" and module["file"] == "f_000007.i3"
    assert expand("$(pad)", config=config, parameters=steering) == "000007"
    assert type(expand("$(pad)", config=config, parameters=steering)) is str


def test_expand_scope_does_not_modify_its_inputs() -> None:
    params = {"a": "$(b)", "b": 1, "l": ["$(b)"]}
    outer = {"z": 0}
    merged = expand_scope(params, outer=outer)
    assert merged == {"z": 0, "a": 1, "b": 1, "l": [1]}
    assert params == {"a": "$(b)", "b": 1, "l": ["$(b)"]} and outer == {"z": 0}
    assert expand_scope(None, outer=outer) == {"z": 0}


def test_runtime_options() -> None:
    config = {"options": {"dataset": 1, "mine": "kept", "job": 99}}
    opts = runtime_options(config, dataset=22634, dataset_id="abc", job=5, jobs_submitted=10, task="gen")
    assert opts["mine"] == "kept" and opts["job"] == 5 and opts["dataset"] == 22634
    assert opts["task"] == "gen" and opts["debug"] is False and opts["jobs_submitted"] == 10
    for absent in ("iter", "task_id", "input", "output"):
        assert absent not in opts
    assert opts["data_url"] == "gsiftp://gridftp.icecube.wisc.edu/"
    assert opts["resource_url"] == "http://prod-exe.icecube.wisc.edu/"
    assert opts["svn_repository"] == "http://code.icecube.wisc.edu/svn/"
    assert opts["site_temp"] == "osdf:///icecube/wipac/scratch/simprod"
    assert opts["dataset_temp"] == "osdf:///icecube/wipac/scratch/simprod/22634"
    assert opts["job_temp"] == "osdf:///icecube/wipac/scratch/simprod/22634/5"
    assert config == {"options": {"dataset": 1, "mine": "kept", "job": 99}}
    assert expand("$(job_temp)/out.i3", config={"options": opts}) == opts["job_temp"] + "/out.i3"


def test_runtime_options_keep_configured_storage() -> None:
    config = {"options": {"site_temp": "file:///scratch/$(dataset_id)", "job_temp": "mine"}}
    opts = runtime_options(config, dataset=7, dataset_id="abc", job=1, jobs_submitted=2, iter=0,
                           input="a.i3 b.i3", output="c.i3", debug=True)
    assert opts["dataset_temp"] == "file:///scratch/abc/7"
    assert opts["job_temp"] == "mine"
    assert (opts["iter"], opts["input"], opts["output"], opts["debug"]) == (0, "a.i3 b.i3", "c.i3", True)
    assert runtime_options(None, dataset=1, dataset_id="x", job=0, jobs_submitted=1)["job"] == 0


def test_no_marker_type_leaks_out_of_expand() -> None:
    steering = expand_scope({"pad": "$sprintf('%03d',$(job))"}, outer=None, config={"options": {"job": 4}})
    out = expand(["$(pad)", {"k": "$(pad)"}, "$(pad)/x"], parameters=steering)
    assert out == ["004", {"k": "004"}, "004/x"]
    assert type(out[0]) is str and type(out[1]["k"]) is str and type(out[2]) is str
