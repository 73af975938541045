"""Plans from claim replies and the report bodies the pilot sends."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.plan import PlanError
from common.transfer import TransferRecord
from pilot.attempt import build_plan, claim_from, plan_failure, report_body, route_for, stats_body
from pilot.detect import UNLIMITED_HOURS, Slot
from pilot.pilot import Pilot, PilotConfig
from pilot.runner import ModuleRecord, TaskResult

CONFIG: dict[str, Any] = {"version": 3.2, "tasks": [{
    "name": "gen", "requirements": {"memory": 2},
    "data": [{"type": "job_temp", "movement": "output", "local": "out_$(job).txt"}],
    "trays": [{"modules": [{"src": "/opt/gen.py", "args": "--seed $(job) --of $(jobs_submitted)"}]}]}]}


def _doc(config: dict[str, Any] = CONFIG, **extra: Any) -> dict[str, Any]:
    return {"task_id": "t1", "instance_id": "i1", "dataset_id": "d1", "job_id": "j1", "job_index": 7, "task_index": 0,
            "config_version": 1,
            "name": "gen", "attempt": 2, "dataset": 21, "jobs_submitted": 10, "debug": False,
            "requirements": {"memory": 3.5, "cpu": 2}, "config": config,
            "scratch_url": "http://server:8080/scratch", **extra}


def test_plan_uses_the_claim_and_the_scratch_store() -> None:
    plan = build_plan(_doc())
    [(_, module)] = list(plan.modules())
    assert module.argv[-4:] == ["--seed", "7", "--of", "10"]
    [entry] = plan.task_data
    assert entry.url == "http://server:8080/scratch/21/7/out_7.txt"


def test_a_site_temp_in_the_config_wins() -> None:
    config = json.loads(json.dumps(CONFIG))
    config["options"] = {"site_temp": "gsiftp://gridftp.example.org/scratch"}
    [entry] = build_plan(_doc(config)).task_data
    assert entry.url == "gsiftp://gridftp.example.org/scratch/21/7/out_7.txt"


def test_unplannable_configs_fail_as_physics() -> None:
    config = json.loads(json.dumps(CONFIG))
    config["tasks"][0]["trays"][0]["modules"][0]["args"] = "$(no_such_option)"
    with pytest.raises(PlanError) as caught:
        build_plan(_doc(config))
    result = plan_failure(caught.value, 0.0)
    assert (route_for(result), result.failure_class, result.kind) == ("failed", "physics", "config")
    assert "no_such_option" in result.reason
    with pytest.raises(ValueError, match="no config"):
        build_plan(_doc(None))  # type: ignore[arg-type]


def test_claim_requirements_and_report_bodies(tmp_path: Path) -> None:
    claim = claim_from(_doc())
    assert (claim.requirements.cpu, claim.requirements.memory) == (2, 3.5)
    (tmp_path / "stderr").write_text("x" * 50_000 + "cvmfs2: failed to initialize root file catalog\n")
    module = ModuleRecord(name="gen", argv=["python3", "/opt/gen.py"], exit_code=1, start=10.0, end=20.0)
    out = TransferRecord(url="http://s/o", local="o", direction="out", size=3, sha512="a" * 128, ok=True)
    result = TaskResult(status="reset", failure_class="non-physics", kind="cvmfs", rule="cvmfs-client",
                        reason="CVMFS client error", modules=[module], outputs=[out], start=5.0, end=25.0,
                        stderr=str(tmp_path / "stderr"), resources={"memory": 0.1})
    body = report_body(result, claim, site="WIPAC", hostname="node1")
    assert (body["instance_id"], body["time_used"], body["class"], body["kind"], body["exit_code"]) == \
        ("i1", 20.0, "non-physics", "cvmfs", 1)
    assert body["stderr"].endswith("root file catalog\n") and len(body["stderr"]) <= 20_000
    assert body["outputs"][0]["sha512"] == "a" * 128 and body["modules"][0]["argv"][1] == "/opt/gen.py"
    stats = stats_body(result, claim, site="WIPAC", pilot_id="p1")
    assert (stats["dataset_id"], stats["attempt"], stats["transfers"]["bytes"]) == ("d1", 2, 3)
    complete = report_body(TaskResult(status="complete", start=1.0, end=2.0), claim, site="")
    assert "class" not in complete and route_for(TaskResult(status="complete")) == "complete"


def test_backoff_grows_with_jitter_and_honours_retry_after(tmp_path: Path) -> None:
    slot = Slot(cpu=2, gpu=0, memory=4.0, disk=10.0, end=None, os="DEBIAN_12_x86_64")
    pilot = Pilot(PilotConfig(url="http://127.0.0.1:1", token="t", workdir=tmp_path, slot=slot, max_backoff=10))
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 10.0)):
        delays = [pilot._backoff(1.0, attempt) for _ in range(50)]
        assert all(base <= d <= base * 1.25 for d in delays) and len(set(delays)) > 1
    assert 30.0 <= pilot._backoff(30.0, 5) <= 37.5  # never below what the server asked for
    free = pilot.free()
    assert (free.cpu, free.memory, free.time) == (2, 4.0, pytest.approx(UNLIMITED_HOURS - 120 / 3600))


async def test_a_claim_the_pilot_cannot_size_fails_without_running(tmp_path: Path) -> None:
    """Requirements this pilot cannot read (a server of another version) are not
    guessed at (it once ran such a task as a 0-GPU task): the claim holds
    nothing and the task is reported failed, naming the field."""
    slot = Slot(cpu=2, gpu=1, memory=4.0, disk=10.0, end=None, os="DEBIAN_12_x86_64")
    pilot = Pilot(PilotConfig(url="http://127.0.0.1:1", token="t", workdir=tmp_path, slot=slot))
    claim = claim_from(_doc(requirements={"gpu": "two"}))
    assert claim.problem.startswith("unreadable requirements: requirements.gpu: expected a whole number")
    assert (claim.requirements.cpu, claim.requirements.gpu, claim.requirements.memory) == (0, 0, 0.0)
    pilot.running[claim.task_id] = claim
    assert pilot.free().gpu == 1  # the unreadable claim takes nothing from the slot
    await pilot._run_claim(claim)
    [report] = [e for e in pilot.spool.pending() if e.route.endswith("/task_actions/failed")]
    assert report.body["kind"] == "config" and "requirements.gpu" in report.body["reason"]
    assert report.body["modules"] == []  # nothing ran
    assert claim.task_id not in pilot.running
