"""file:// output roots on the server side (issue 11 item 8): what the claim
reply hands a local and a grid pilot, the submit check of static output
paths, and a run-time escape ending the attempt as a final ``config``
failure (physics class: the task is not retried)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from common.plan.records import DataTransfer
from common.transfer.local import LocalFiles
from pilot.attempt import route_for
from server.scheduling.file_roots import static_output_problems
from tests.pilot.runner_plans import PY, module, plan, run, script, tray
from tests.server.test_api_pilot_support import claim, make_dataset, register
from tests.server.user_api_helpers import CONFIG, call, config


async def test_claim_reply_gives_local_pilots_the_data_dir_and_grid_pilots_nothing(server) -> None:
    await make_dataset(server.store, jobs=2)
    rc = server.rest(server.token("pilot-1", role="pilot"))
    data_dir = os.path.abspath(server.settings.data_dir)
    local = await claim(rc, await register(rc, site=server.settings.local_site),
                        site=server.settings.local_site)
    assert local["file_roots"] == [data_dir]
    assert os.path.join(data_dir, "pilots") in local["file_denied"]
    assert os.path.abspath(server.settings.db.removeprefix("sqlite:///")) in local["file_denied"]
    grid = await claim(rc, await register(rc))
    assert grid["file_roots"] == []


def _with_output(remote: str) -> dict:
    cfg = config()
    cfg["tasks"][0]["data"] = [{"remote": remote, "local": "out.txt", "movement": "output"}]
    return cfg


@pytest.mark.parametrize("remote, refused", [
    ("file:///etc/cron.d/x", True),
    ("/etc/cron.d/x", True),
    ("file://{data}/../escape.txt", True),
    ("file://{data}/auth.key", True),
    ("file://{data}/pilots/p1/token", True),
    ("file://{data}/results/out.txt", False),
    ("file:///elsewhere/$(job)/out.txt", False),  # not static: the pilot checks it at run time
    ("osdf:///icecube/wipac/out.txt", False),
])
async def test_static_output_paths_are_checked_at_submit(server, remote: str, refused: bool) -> None:
    data = os.path.abspath(server.settings.data_dir)
    remote = remote.format(data=data)
    cfg = _with_output(remote)
    status, body, _ = await call(server, "POST", "/actions/submit", server.token("alice"),
                                 body={"config": json.dumps(cfg), "jobs_submitted": 1})
    if refused:
        assert status == 400 and "may not be written" in body["error"] and "tasks[0].data[0]" in body["error"], body
    else:
        assert status == 201, body


def test_a_configured_grid_root_allows_a_static_path(server_settings) -> None:
    cfg = _with_output("file:///mnt/shared/out.txt")
    assert static_output_problems(cfg, server_settings)
    server_settings.grid_file_roots = "/mnt/shared"
    assert static_output_problems(cfg, server_settings) == []
    relative = config()  # a relative remote joins options.data_url
    relative["options"] = {"data_url": "file:///etc"}
    relative["tasks"][0]["data"] = [{"remote": "x.txt", "movement": "output"}]
    assert "file:///etc/x.txt" in static_output_problems(relative, server_settings)[0]
    assert CONFIG["tasks"][0].get("data") is None  # the shared config was not touched


async def test_an_escape_at_run_time_is_a_final_config_failure(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    prog = script(tmp_path, "gen.py", """
        import sys
        open(sys.argv[1], "w").write("x")
    """)
    task = plan([tray([module("gen", [PY, prog, "out.txt"])])],
                task_data=[DataTransfer(url=f"file://{outside}/out.txt", local="out.txt", movement="output",
                                        transfer="yes", path="data[out.txt]")])
    result = await run(task, tmp_path / "work", schemes={"file": LocalFiles(roots=[str(root)])})
    assert (result.status, result.failure_class, result.kind) == ("failed", "physics", "config"), result.reason
    assert "outside the allowed roots" in result.reason
    assert route_for(result) == "failed"  # the physics route: no retry
    assert not outside.exists()
