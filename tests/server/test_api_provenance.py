"""Provenance of an output: the REST route and ``frazil provenance``."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys

import pytest
import requests

from common.cli_errors import CliError
from common.client import client_from_env
from tests.server.test_api_pilot_support import claim, make_dataset, register


async def _complete_with_output(server, url: str, data: bytes = b"events") -> tuple[object, dict]:
    made = await make_dataset(server.store, owner="alice", group="simprod")
    rc = server.rest(server.token("pilot-1", role="pilot"))
    task = await claim(rc, await register(rc))
    await rc.request("POST", f"/tasks/{task['task_id']}/task_actions/complete", {
        "instance_id": task["instance_id"], "time_used": 30, "hostname": "node7", "site": "WIPAC",
        "version": "0.1.0",
        "modules": [{"name": "gen", "argv": ["python", "gen.py", "--seed", "0"], "env_shell": ["env.sh"],
                     "exit_code": 0}],
        "inputs": [{"url": "http://example.org/gcd.i3", "size": 3, "sha512": "0" * 128}],
        "outputs": [{"url": url, "size": len(data), "sha512": hashlib.sha512(data).hexdigest()},
                    {"url": "file:///optional.i3", "skipped": True}],
    })
    return made, task


async def _cli(server, *args: str, token: str | None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
    env["FRAZIL_URL"] = server.url
    if token:
        env["FRAZIL_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", "provenance", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_provenance_of_an_output(server, tmp_path):
    output = tmp_path / "out" / "gen_0.i3"
    made, task = await _complete_with_output(server, output.as_uri())
    owner = server.rest(server.token("alice", groups=["users"]))
    reply = await owner.request("GET", "/provenance", {"url": output.as_uri()})
    [record] = reply["results"]
    assert record["dataset_id"] == made.dataset.dataset_id and record["dataset"] == made.dataset.dataset
    assert record["task_id"] == task["task_id"] and record["task_name"] == "t0" and record["job_index"] == 0
    assert record["attempt"] == 1 and record["config_version"] == made.version
    assert record["host"] == "node7" and record["site"] == "WIPAC" and record["pilot_id"] == task["pilot_id"]
    assert record["modules"][0]["argv"] == ["python", "gen.py", "--seed", "0"]
    assert record["sha512"] == hashlib.sha512(b"events").hexdigest() and record["size"] == 6
    assert record["frazil_version"] == "0.1.0" and record["inputs"][0]["url"] == "http://example.org/gcd.i3"

    with pytest.raises(requests.HTTPError) as err:  # skipped outputs are not provenance
        await owner.request("GET", "/provenance", {"url": "file:///optional.i3"})
    assert err.value.response.status_code == 404
    outsider = server.rest(server.token("eve", groups=["guests"]))
    with pytest.raises(requests.HTTPError) as err:  # unreadable looks like unknown
        await outsider.request("GET", "/provenance", {"url": output.as_uri()})
    assert err.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as err:
        await owner.request("GET", "/provenance")
    assert err.value.response.status_code == 400

    # the command line, given the local path of the file
    output.parent.mkdir()
    output.write_bytes(b"events")
    code, out, err_text = await _cli(server, str(output), token=server.token("alice", groups=["users"]))
    assert code == 0, err_text
    assert f"dataset {made.dataset.dataset}" in out and "task t0" in out and "attempt 1" in out
    assert "env.sh python gen.py --seed 0 (exit 0)" in out and "node7" in out
    assert "(the local file matches)" in out
    output.write_bytes(b"changed")
    code, out, _ = await _cli(server, str(output), token=server.token("alice", groups=["users"]))
    assert code == 0 and "the local file DIFFERS" in out
    code, out, _ = await _cli(server, output.as_uri(), "--json", token=server.token("alice", groups=["users"]))
    assert code == 0 and json.loads(out)["results"][0]["task_id"] == task["task_id"]


async def test_cli_errors_are_one_line(server, tmp_path):
    code, out, err = await _cli(server, str(tmp_path / "unknown.i3"), token=server.token("alice"))
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0 and "no provenance recorded" in err and "HTTP 404" in err
    code, _, err = await _cli(server, "file:///x", token=None)
    assert code == 2 and "FRAZIL_TOKEN" in err and err.strip().count("\n") == 0


def test_client_from_env_needs_url_and_token(tmp_path):
    with pytest.raises(CliError, match="FRAZIL_URL"):
        client_from_env({"FRAZIL_TOKEN": "t"})
    with pytest.raises(CliError, match="http"):
        client_from_env({"FRAZIL_URL": "ftp://x", "FRAZIL_TOKEN": "t"})
    with pytest.raises(CliError, match="FRAZIL_TOKEN_FILE"):
        client_from_env({"FRAZIL_URL": "http://x", "FRAZIL_TOKEN_FILE": str(tmp_path / "missing")})
    token_file = tmp_path / "token"
    token_file.write_text("abc\n")
    client = client_from_env({"FRAZIL_URL": "http://x/", "FRAZIL_TOKEN_FILE": str(token_file)})
    assert client.address == "http://x"
    client.close()
