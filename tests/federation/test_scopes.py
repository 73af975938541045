"""Storage scopes at submit, as IceProd's TokenSubmitter works them out (reference §4.7)."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from common.cli_errors import CliError
from server.cli.basic_submit import build_config
from server.credentials.scopes import add_token_scopes, namespace_path, scope_dir, task_scopes

REPO = Path(__file__).resolve().parents[2]

NS = "/icecube/wipac"


def _config(*data, task_scopes_field=None, parameters=None):
    task = {"name": "generate", "trays": [{"modules": [{"src": "x.py", "data": list(data)}]}],
            "parameters": parameters or {}}
    if task_scopes_field is not None:
        task["token_scopes"] = task_scopes_field
    return {"version": 3.2, "options": {}, "steering": {"parameters": {"base": "osdf:///icecube/wipac/data/sim"}},
            "tasks": [task]}


def test_iceprods_verified_examples():
    assert scope_dir("/data/sim/IceCube/2023/generated/12345/000000-000999/file.i3") == \
        "/data/sim/IceCube/2023/generated/12345"
    assert scope_dir("/data/sim/x/$(dataset)/f.i3") == "/data/sim/x"
    assert scope_dir("/data/exp/IceCube/2023/filtered/level2/0101/Run00123/f.i3") == \
        "/data/exp/IceCube/2023/filtered/level2/0101"
    assert scope_dir("/data/user/f.i3") == "/data/user"


def test_namespace_paths():
    assert namespace_path("osdf:///icecube/wipac/data/f", NS) == "/data/f"
    assert namespace_path("pelican://osg-htc.org/icecube/wipac/data/f", NS) == "/data/f"
    assert namespace_path("osdf:///ospool/data/f", NS) is None
    assert namespace_path("gsiftp://host/icecube/wipac/data/f", NS) is None


def test_task_scopes_from_data_entries_macros_and_token_scopes():
    config = _config(
        {"remote": "$(base)/IceCube/2023/generated/$(dataset)/f_$(job).i3", "movement": "output"},
        {"remote": "osdf:///icecube/wipac/data/exp/gcd/GCD.i3.gz", "movement": "input"},
        {"remote": "osdf:///icecube/wipac/data/sim/000000-000999/f.i3", "movement": "both"},
        {"remote": "osdf:///icecube/wipac/scratch/x.i3", "type": "job_temp", "movement": "output"},
        {"remote": "gsiftp://gridftp.icecube.wisc.edu/data/f.i3", "movement": "input"},
        task_scopes_field={"https://token-issuer.icecube.aq": "storage.read:/data/ana storage.read:/x/$(job)"})
    assert task_scopes(config, config["tasks"][0], NS, 10) == (
        "storage.modify:/data/sim storage.modify:/data/sim/IceCube/2023/generated "
        "storage.read:/data/ana storage.read:/data/exp/gcd storage.read:/data/sim "
        "storage.read:/data/sim/IceCube/2023/generated")
    written = add_token_scopes(config, NS, 10)["tasks"][0]["token_scopes"]
    assert written["osdf:///icecube/wipac"].startswith("storage.modify:/data/sim ")
    assert written["https://token-issuer.icecube.aq"] == "storage.read:/data/ana storage.read:/x/$(job)"


def test_a_task_without_namespace_data_gets_no_scopes():
    config = _config({"remote": "https://example.org/f", "movement": "input"})
    assert add_token_scopes(config, NS, 1)["tasks"][0] == config["tasks"][0]


def test_basic_submit_scopes_like_iceprods_script(tmp_path):
    """`frazil basic-submit` and examples/basic_submit_rest.py work out the same scopes."""
    jobs = [(["osdf:///icecube/wipac/data/exp/IceCube/2023/filtered/level2/0101/Run1/in.i3"],
             "osdf:///icecube/wipac/data/sim/x/000000-000999/out.i3"),
            (["file:///tmp/in.txt"], "file:///tmp/out.txt")]
    args = argparse.Namespace(script="/bin/true", description="", request_cpus=1, request_gpus=0,
                              request_memory=1.0, args="", env_shell="", scope=["storage.read:/extra"])
    cli = build_config(args, jobs)["tasks"][0]["token_scopes"]
    assert cli == {"https://token-issuer.icecube.aq":
                   "storage.modify:/data/sim/x storage.read:/data/exp/IceCube/2023/filtered/level2/0101 "
                   "storage.read:/extra"}
    spec = importlib.util.spec_from_file_location("basic_submit_rest", REPO / "examples" / "basic_submit_rest.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.token_scopes(jobs, ["storage.read:/extra"]) == cli
    many = [([], f"osdf:///icecube/wipac/data/d{i}/f") for i in range(26)]
    with pytest.raises(ValueError, match="too many"):
        example.token_scopes(many, [])
    with pytest.raises(CliError, match="too many"):
        build_config(args, many)
