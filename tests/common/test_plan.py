"""Task plans: the tutorial's config resolves to what a physicist expects."""
from __future__ import annotations

import copy
import json
import pathlib

import pytest

from common.config import fill_defaults
from common.plan import JobContext, PlanError, build_task_plan, check_submission, task_requirements

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
NUGEN_SRC = "/cvmfs/icecube.opensciencegrid.org/py3-v4.3.0/metaprojects/icetray/v1.9.2/simprod-scripts/resources/scripts/nugen.py"
ENV_SHELL = ["/cvmfs/icecube.opensciencegrid.org/py3-v4.3.0/icetray-env", "icetray/v1.9.2"]


@pytest.fixture
def tutorial() -> dict:
    return json.loads((EXAMPLES / "nugen-tutorial.json").read_text())


@pytest.fixture
def demo() -> dict:
    return json.loads((EXAMPLES / "local-demo.json").read_text())


def test_tutorial_nugen_module_has_the_slides_command_line(tutorial):
    plan = build_task_plan(tutorial, "generation", JobContext(dataset=22634, job=0, jobs_submitted=100))
    [(tray, module)] = list(plan.modules())
    assert module.argv == ENV_SHELL + ["python", NUGEN_SRC, "--FromEnergy=10000", "--ToEnergy=1000000",
                                       "--nevents=10000", "--outputfile=NuGen_0.i3.zst"]
    assert module.env_shell == ENV_SHELL


def test_tutorial_output_goes_to_the_target_directory(tutorial):
    plan = build_task_plan(tutorial, "generation", JobContext(dataset=22634, job=1234, jobs_submitted=2000))
    [output] = plan.task_data
    assert output.url == ("gsiftp://gridftp.icecube.wisc.edu/data/sim/IceCube/2023/filtered/level2/"
                          "neutrino-generator/22634/0001000-0001999/NuGen_1234.i3.zst")
    assert output.local == "NuGen_1234.i3.zst"
    assert output.is_output and not output.is_input
    assert plan.requirements["memory"] == 2 and plan.requirements["time"] == 1.5
    assert plan.requirements["cpu"] == 1


def test_tutorial_steering_values_in_a_module(tutorial):
    """The steering block's physics values, read from a module's parameters."""
    config = copy.deepcopy(tutorial)
    module = config["tasks"][0]["trays"][0]["modules"][0]
    module["args"] = {"seed": "$steering(seed)", "run": "$steering(CORSIKA::run)",
                      "showers": "$steering(CORSIKA::showers)", "interaction": "$steering(GENERATION::this_interaction)",
                      "emax": "$steering(CORSIKA::eprimarymax)"}
    plan = build_task_plan(config, 0, JobContext(dataset=22634, job=7, jobs_submitted=100))
    [(_, planned)] = list(plan.modules())
    seed = (22634 % 20000) * 10000 + 7 * 10 + 0
    assert planned.argv[-5:] == [f"--seed={seed}", f"--run={(22634 * 100000 + 7) % 100000000 + 1}",
                                 "--showers=300000", "--interaction=NuGenCCNC", f"--emax={10**11}"]


def test_tutorial_passes_the_submit_check(tutorial):
    assert check_submission(tutorial, 100, dataset=22634) == []


def test_unresolved_macro_is_reported_with_its_path(tutorial):
    config = copy.deepcopy(tutorial)
    config["tasks"][0]["trays"][0]["modules"][0]["args"]["outputfile"] = "$steering(outfil)"
    problems = check_submission(config, 10)
    assert problems, "a misspelled steering parameter must be caught at submission"
    assert all(p.path.startswith("config['tasks'][0]['trays'][0]['modules'][0]['args']") for p in problems)
    assert "$steering(outfil)" in " ".join(str(p) for p in problems)
    with pytest.raises(PlanError):
        build_task_plan(config, 0, JobContext(dataset=1, job=0, jobs_submitted=10))


def test_macro_requirement_is_resolved_and_checked(tutorial):
    config = copy.deepcopy(tutorial)
    config["tasks"][0]["requirements"]["memory"] = "$eval(1.5*2)"
    plan = build_task_plan(config, 0, JobContext(dataset=1, job=0, jobs_submitted=1))
    assert plan.requirements["memory"] == 3.0
    config["tasks"][0]["requirements"]["memory"] = "$steering(nope)"
    problems = check_submission(config, 1)
    assert any(p.path == "config['tasks'][0]['requirements']['memory']" for p in problems)


def test_iterations_and_input_lists(demo):
    ctx = JobContext(dataset=5, job=3, jobs_submitted=10)
    generate = build_task_plan(demo, "generate", ctx)
    assert [t.iteration for t in generate.trays] == [0, 1]
    seeds = [m.argv[m.argv.index("generate.py") + 1] for _, m in generate.modules()]
    assert seeds == ["--seed=50030", "--seed=50031"]
    assert [t.data[0].local for t in generate.trays] == ["gen_0.txt", "gen_1.txt"]
    combine = build_task_plan(demo, "combine", ctx)
    [(_, module)] = list(combine.modules())
    assert module.argv[-3:] == ["summary_000003.json", "gen_0.txt", "gen_1.txt"]
    [in0, in1, out] = combine.task_data
    assert in0.url == generate.trays[0].data[0].url, "job_temp hands the file from one task to the next"
    assert out.type == "dataset_temp" and out.url.endswith("/5/summary_000003.json")


def test_unknown_task_names_the_choices(demo):
    with pytest.raises(PlanError, match="no task named 'nope'.*'generate', 'combine'"):
        build_task_plan(demo, "nope", JobContext(dataset=1, job=0, jobs_submitted=1))


def test_bad_job_count_is_a_problem(demo):
    [problem] = check_submission(demo, 0)
    assert "jobs" in str(problem)


def test_escaped_dollar_stays_literal_in_args(demo):
    config = copy.deepcopy(demo)
    config["tasks"][0]["trays"][0]["modules"][0]["args"] = {"label": "\\$(job)", "n": "$(job)"}
    plan = build_task_plan(config, "generate", JobContext(dataset=1, job=4, jobs_submitted=5))
    module = plan.trays[0].modules[0]
    assert module.argv[-2:] == ["--label=$(job)", "-n=4"]


def test_task_files_are_appended_to_the_task_data(demo):
    config = copy.deepcopy(demo)
    config["tasks"][1]["task_files"] = True
    config["tasks"][1]["token_scopes"] = {"file:///": "storage.read:/data"}
    files = [{"remote": "file:///data/in_$(job).i3", "movement": "input", "type": "permanent", "transfer": True}]
    plan = build_task_plan(config, "combine", JobContext(dataset=1, job=6, jobs_submitted=7, task_files=files))
    assert plan.task_data[-1].url == "file:///data/in_6.i3" and plan.task_data[-1].local == "in_6.i3"
    module = plan.trays[0].modules[0]
    assert module.argv[-1] == "in_6.i3", "$(input) lists the registered file too"


@pytest.mark.parametrize("args, expected", [
    # F9: a string with no macro reaches the program as written, in every form ...
    ("-c true", ["-c", "true"]),
    (["-c", "true"], ["-c", "true"]),
    (["1.50", "007"], ["1.50", "007"]),
    ({"flag": "true", "n": "007"}, ["--flag=true", "-n=007"]),
    ({"args": ["1.50"], "kwargs": {"x": "false"}}, ["1.50", "-x=false"]),
    # ... a value a macro produced keeps IceProd's form, and so do JSON true/false.
    (["$(job)", "$eval(3/2)", True, False], ["7", "1.5", "True", "False"]),
    ({"debug": True, "seed": "$(job)"}, ["--debug=True", "--seed=7"]),
    ("-n $(job) 007", ["-n", "7", "007"]),
])
def test_literal_arguments_reach_the_program_as_written(args, expected):
    config = {"version": 3.2, "tasks": [{"name": "t", "trays": [{"modules": [
        {"src": "/bin/sh", "args": args, "env_clear": False}]}]}]}
    plan = build_task_plan(config, "t", JobContext(dataset=1, job=7, jobs_submitted=8))
    [(_, module)] = list(plan.modules())
    assert module.argv[-len(expected):] == expected


def test_task_requirements_is_the_plans_reading() -> None:
    """Materialization sizes a task with ``task_requirements``: the same scopes
    and parser as the plan the pilot builds, so both give the same dict."""
    config = fill_defaults({"version": 3.2, "steering": {"parameters": {"mem": "1500MB", "base": 2}},
                            "tasks": [{"name": "t", "parameters": {"hours": "$eval($(base) * 2)h"},
                                       "requirements": {"memory": "$(mem)", "time": "${hours}",
                                                        "disk": "$eval($(job) + 1)", "os": ["$(task)"]},
                                       "trays": [{"modules": [{"src": "a.py"}]}]}]})
    for job in (0, 6):
        ctx = JobContext(dataset=3, job=job, jobs_submitted=7, dataset_id="d" * 32)
        plan = build_task_plan(config, 0, ctx, defaults_filled=True)
        assert task_requirements(config, 0, ctx) == plan.requirements == {
            "cpu": 1, "memory": 1.5, "disk": job + 1, "time": 4.0, "os": ["t"]}
    bad = copy.deepcopy(config)
    bad["tasks"][0]["requirements"]["memory"] = "$eval(0 - $(job))"
    with pytest.raises(PlanError, match=r"\['memory'\]: memory: must be greater than 0 \(GB\), got 0"):
        task_requirements(bad, 0, JobContext(dataset=3, job=0, jobs_submitted=7))
