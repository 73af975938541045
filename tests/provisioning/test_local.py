"""The local provider with real processes: slots respected, token in a 0600
file (never in argv), nothing restarted blindly, everything stopped on close."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from common.resources import Resources
from server.provisioning.base import JobState, PilotShape
from server.provisioning.local import LocalProvider, parse_slots

# Stands in for `frazil pilot`: records what it was given, then behaves as told.
FAKE_PILOT = textwrap.dedent("""
    import json, os, signal, sys, time, stat
    args = sys.argv[1:]
    token_file = args[args.index("--token-file") + 1]
    mode = stat.S_IMODE(os.stat(token_file).st_mode)
    record = {"argv": args, "token": open(token_file).read().strip(), "mode": mode,
              "job_id": os.environ.get("FRAZIL_PROVIDER_JOB_ID"), "provider": os.environ.get("FRAZIL_PROVIDER"),
              "operator_token": os.environ.get("FRAZIL_TOKEN")}
    open("record.json", "w").write(json.dumps(record))
    behaviour = os.environ.get("FAKE_PILOT", "wait")
    if behaviour == "exit":
        sys.exit(3)
    if behaviour == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: (open("terminated", "w").close(), sys.exit(0)))
    while True:
        time.sleep(0.05)
""")


@pytest.fixture
def local(tmp_path, monkeypatch):
    script = tmp_path / "fake_pilot.py"
    script.write_text(FAKE_PILOT)
    monkeypatch.setenv("FRAZIL_TOKEN", "operator-secret")
    tokens = iter(f"pilot-token-{i}" for i in range(100))
    provider = LocalProvider(server_url="http://127.0.0.1:1", slots=Resources(cpu=3, memory=4, disk=10, time=0),
                             directory=tmp_path / "pilots", mint_token=lambda: next(tokens),
                             command=[sys.executable, str(script)], stop_grace=1.0)
    return provider


async def wait_for(path: Path, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if path.exists() and path.stat().st_size:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


async def test_pilots_get_a_private_token_file_and_the_slots_hold(local, tmp_path):
    shape = PilotShape(cpu=1, memory=1.5, disk=2, time=24, site="local", group="batchsys-0123456789abcdef")
    ids = await local.submit(shape, 5)
    try:
        assert len(ids) == 2  # memory 4 GB holds two 1.5 GB pilots; cpu would allow three
        assert await local.submit(shape, 1) == []
        for job_id in ids:
            await wait_for(tmp_path / "pilots" / job_id / "record.json")
        records = [json.loads((tmp_path / "pilots" / j / "record.json").read_text()) for j in ids]
        assert {r["token"] for r in records} == {"pilot-token-0", "pilot-token-1"}
        assert all(r["mode"] == 0o600 for r in records)
        assert all(not any("pilot-token" in a for a in r["argv"]) for r in records)
        assert [r["job_id"] for r in records] == ids and {r["provider"] for r in records} == {"local"}
        assert {r["operator_token"] for r in records} == {None}
        argv = records[0]["argv"]
        assert argv[argv.index("--memory") + 1] == "1.5" and argv[argv.index("--site") + 1] == "local"
        assert argv[argv.index("--server") + 1] == "http://127.0.0.1:1"
        assert argv[argv.index("--group") + 1] == shape.group  # a batchsys group's pilot claims only its tasks
        assert await local.status() == {ids[0]: JobState.RUNNING, ids[1]: JobState.RUNNING}
        assert local.counts().running == 2
    finally:
        await local.close()
    assert all((tmp_path / "pilots" / j / "terminated").exists() for j in ids)  # SIGTERM, handled
    assert local.jobs() == [] and local.counts().done == 2
    assert not any((tmp_path / "pilots" / j / "pilot.token").exists() for j in ids)


async def test_an_exited_pilot_is_not_restarted(local, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_PILOT", "exit")
    [job_id] = await local.submit(PilotShape(site="local"), 1)
    for _ in range(200):
        if (await local.status()).get(job_id) == JobState.FAILED:
            break
        await asyncio.sleep(0.05)
    assert await local.status([job_id]) == {job_id: JobState.FAILED}
    assert local.jobs() == [] and local.counts().submitted == 1  # nothing new was started
    # it died at once: new starts pause (no restart storm) and the reason is shown
    assert await local.submit(PilotShape(site="local"), 1) == []
    assert "exited with code 3 after" in local.counts().last_error
    await local.close()


async def test_a_pilot_ignoring_sigterm_is_killed_on_close(local, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_PILOT", "stubborn")
    [job_id] = await local.submit(PilotShape(site="local"), 1)
    await wait_for(tmp_path / "pilots" / job_id / "record.json")
    pid = local._live[job_id].process.pid
    await local.cancel([job_id], "test")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert local.jobs() == []


def test_parse_slots(tmp_path):
    slots = parse_slots("cpus=2,memory=4GB", tmp_path)
    assert (slots.cpu, slots.gpu, slots.memory) == (2, 0, 4.0) and slots.disk > 0
    assert parse_slots("cpus=1, gpus=2, memory=512MB, disk=10", tmp_path).as_dict() == \
        {"cpu": 1, "gpu": 2, "memory": 0.512, "disk": 10.0, "time": 0.0}
    with pytest.raises(ValueError, match="cannot read 'cores=2'"):
        parse_slots("cores=2", tmp_path)
    with pytest.raises(ValueError, match="cpus must be a whole number, got 'two'"):
        parse_slots("cpus=two", tmp_path)
    with pytest.raises(ValueError, match="memory must be a size"):
        parse_slots("memory=lots", tmp_path)
