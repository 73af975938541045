"""The ``frazil`` command as a user runs it: a real process, real files."""
from __future__ import annotations

import json
import pathlib
import shlex
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def frazil(*args: str, cwd: pathlib.Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=timeout, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_validate_ok():
    result = frazil("validate", str(EXAMPLES / "nugen-tutorial.json"), "--jobs", "100")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_validate_lists_every_problem_with_its_path(tmp_path):
    config = json.loads((EXAMPLES / "local-demo.json").read_text())
    config["tasks"][0]["trays"][0]["modules"][0]["foo"] = 1
    config["tasks"][1]["requirements"]["cpu"] = "2"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    result = frazil("validate", str(path), "--jobs", "3")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert ("Validation error in config['tasks'][0]['trays'][0]['modules'][0]: "
            "Additional properties are not allowed ('foo' was unexpected)") in lines
    assert "Validation error in config['tasks'][1]['requirements']['cpu']: '2' is not of type 'integer'" in lines


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
])
def test_unreadable_config_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    result = frazil("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert message in result.stderr


def test_dry_run_prints_the_tutorial_command_line():
    result = frazil("run", str(EXAMPLES / "nugen-tutorial.json"), "--job", "0", "--dataset", "22634", "--dry-run")
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert commands == [
        "/cvmfs/icecube.opensciencegrid.org/py3-v4.3.0/icetray-env icetray/v1.9.2 python "
        "/cvmfs/icecube.opensciencegrid.org/py3-v4.3.0/metaprojects/icetray/v1.9.2/simprod-scripts/resources/scripts/nugen.py "
        "--FromEnergy=10000 --ToEnergy=1000000 --nevents=10000 --outputfile=NuGen_0.i3.zst"
    ]
    assert shlex.split(commands[0])[-1] == "--outputfile=NuGen_0.i3.zst"
    assert "# stage out: gsiftp://gridftp.icecube.wisc.edu/" not in result.stdout  # output goes the other way
    assert "-> gsiftp://gridftp.icecube.wisc.edu/data/sim/IceCube/2023/filtered/level2/neutrino-generator/22634/0000000-0000999/NuGen_0.i3.zst" in result.stdout


def test_run_executes_the_demo_job(tmp_path):
    work, scratch = tmp_path / "work", tmp_path / "scratch"
    result = frazil("run", str(EXAMPLES / "local-demo.json"), "--job", "2", "--dataset", "9",
                    "--workdir", str(work), "--scratch", str(scratch), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "complete" and summary["class"] is None
    assert set(summary) >= {"status", "class", "kind", "rule", "reason", "resources"}
    output = json.loads((scratch / "9" / "summary_000002.json").read_text())
    assert output["events"] == 2000 and output["files"] == ["gen_0.txt", "gen_1.txt"]


def test_run_reports_a_failing_module(tmp_path):
    config = json.loads((EXAMPLES / "local-demo.json").read_text())
    config["tasks"][0]["trays"][0]["modules"][0]["args"]["events"] = "not-a-number"
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(config))
    for script in ("generate.py", "combine.py"):
        (tmp_path / script).write_text((EXAMPLES / script).read_text())
    result = frazil("run", str(path), "--job", "0", "--task", "generate", "--workdir", str(tmp_path / "w"),
                    "--scratch", str(tmp_path / "s"), cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "failed" and summary["class"] == "physics"


def test_run_unknown_task_is_one_line(tmp_path):
    result = frazil("run", str(EXAMPLES / "local-demo.json"), "--job", "0", "--task", "nope", "--dry-run")
    assert result.returncode == 1
    assert "no task named 'nope'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind, requirements, body", [
    ("time", {"time": 0.0005}, "import time; time.sleep(120)"),
    ("memory", {"memory": 0.05},
     "import time\nhog = []\nwhile True:\n    hog.append(bytearray(20_000_000)); time.sleep(0.05)"),
])
def test_run_enforces_the_task_limits_like_a_pilot(tmp_path, kind, requirements, body):
    """A standalone run is stopped at the task's limits and classified as a pilot would
    (reset, non-physics, the resource that ran out) — not left running for two minutes."""
    (tmp_path / "work.py").write_text(body + "\n")
    config = {"version": 3.2, "tasks": [{"name": "t", "requirements": requirements,
                                         "trays": [{"modules": [{"src": "work.py"}]}]}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    result = frazil("run", str(path), "--job", "0", "--workdir", str(tmp_path / "w"), "--scratch",
                    str(tmp_path / "s"), cwd=tmp_path, timeout=90)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["class"], summary["kind"]) == ("reset", "non-physics", kind)


@pytest.mark.parametrize("src, kind, rule", [
    ("/opt/nowhere/bin/generate", "missing-executable", "missing-executable"),
    ("/cvmfs/icecube.opensciencegrid.org/py3-v4.3.0/not-there.sh", "cvmfs", "cvmfs-missing-path"),
    ("/nowhere/gen.py", "missing-executable", "missing-executable"),
])
def test_a_missing_program_is_a_named_non_physics_failure(tmp_path, src, kind, rule):
    config = {"version": 3.2, "tasks": [{"name": "t", "trays": [{"modules": [{"src": src}]}]}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    result = frazil("run", str(path), "--job", "0", "--workdir", str(tmp_path / "w"), "--scratch",
                    str(tmp_path / "s"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["class"], summary["kind"], summary["rule"]) == (
        "reset", "non-physics", kind, rule)
    assert src in summary["reason"]


def test_token_create_takes_the_user_as_written_on_the_login_page(tmp_path):
    import base64
    positional = frazil("token", "create", "alice", "--role", "admin", cwd=tmp_path)
    flag = frazil("token", "create", "--user", "alice", cwd=tmp_path)
    for result in (positional, flag):
        assert result.returncode == 0, result.stderr
        payload = result.stdout.strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert "alice" in json.dumps(claims)
    clash = frazil("token", "create", "alice", "--user", "bob", cwd=tmp_path)
    assert clash.returncode == 2 and "two user names" in clash.stderr
    nobody = frazil("token", "create", cwd=tmp_path)
    assert nobody.returncode == 2 and "frazil token create USER" in nobody.stderr


def test_validate_names_a_relative_script_a_submit_could_not_carry(tmp_path):
    (tmp_path / "demo.json").write_text((EXAMPLES / "local-demo.json").read_text())
    (tmp_path / "generate.py").write_text((EXAMPLES / "generate.py").read_text())
    result = frazil("validate", str(tmp_path / "demo.json"))
    assert result.returncode == 1
    assert (f"config['tasks'][1]['trays'][0]['modules'][0]['src']: module source 'combine.py' is neither a file "
            f"beside the config ({tmp_path / 'combine.py'}) nor staged by a data entry") in result.stdout.splitlines()
    assert "'generate.py'" not in result.stdout
    (tmp_path / "combine.py").write_text((EXAMPLES / "combine.py").read_text())
    assert frazil("validate", str(tmp_path / "demo.json")).returncode == 0


def test_validate_converts_an_old_config_and_warns_like_a_submit(tmp_path):
    config = {"version": 3.1, "tasks": [{"name": "a", "trays": [{"projects": ["simprod"],
                                                                 "modules": [{"src": "/bin/true"}]}]}]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(config))
    result = frazil("validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning: config['tasks'][0]['trays'][0]['projects']: dropped 'projects'" in result.stdout
    assert "OK, 1 warning(s)" in result.stdout
    config["tasks"][0]["data"] = [{"type": "job_temp", "remote": "gsiftp://x/f", "local": "f"}]
    path.write_text(json.dumps(config))
    bad = frazil("validate", str(path))
    assert bad.returncode == 1 and "remote should be empty when type is temporary" in bad.stdout
