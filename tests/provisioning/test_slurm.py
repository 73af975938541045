"""The Slurm provider against a real one-node Slurm (the ``slurm`` fixture):
sbatch job arrays of the right shape, states from squeue (JSON and the fixed
format), ended jobs from the job completion file, scancel, pilots of an
earlier run found again; batch scripts checked by ``sbatch --test-only``."""
from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server.provisioning.base import JobState, PilotJob, PilotShape
from common.batchsys import checked, group_of
from server.provisioning.slurm import SlurmOptions, SlurmProvider, SlurmSite, render_script, shape_from_comment
from server.provisioning.slurm_records import expand_tasks, from_jobcomp, from_sacct_json, from_sacct_text, job_state
from tests.provisioning.slurm_cluster import SlurmCluster, slurm  # noqa: F401 (fixture)

URL = "http://127.0.0.1:1"
FAKE = Path(__file__).resolve().parent / "fake_slurm_pilot.py"


def make(tmp_path: Path, slurm: SlurmCluster, url: str = URL, **options) -> SlurmProvider:  # noqa: F811
    opts = SlurmOptions(server_url=url, submit_dir=tmp_path / "slurm", command=[sys.executable, str(FAKE)],
                        **options)
    return SlurmProvider(options=opts, mint_token=lambda: "slurm-secret", environ={**os.environ, **slurm.env})


async def until(provider: SlurmProvider, ids: list[str], wanted: set[JobState], seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        states = await provider.status(ids)
        if set(states.values()) <= wanted:
            return states
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.3)


@pytest.fixture
def clean(slurm):  # noqa: F811
    slurm.cancel_all()
    yield
    slurm.cancel_all()


@pytest.mark.parametrize("use_json", [True, False], ids=["squeue-json", "squeue-format"])
async def test_a_job_array_runs_pilots_of_the_shape_and_scancel_ends_them(tmp_path, slurm, clean, use_json):  # noqa: F811
    provider = make(tmp_path, slurm, json=use_json)
    shape = PilotShape(cpu=2, memory=1.5, disk=3, time=2.0, site="")
    ids = await provider.submit(shape, 5)
    assert len(ids) == 5 and len({i.split("_")[0] for i in ids}) == 1  # one sbatch, one array
    # the node's 8 CPUs hold four 2-CPU pilots; the fifth waits (squeue shows it as the array's rest)
    deadline = time.monotonic() + 30
    while (await provider.status(ids)) != {**{i: JobState.RUNNING for i in ids[:4]}, ids[4]: JobState.PENDING}:
        assert time.monotonic() < deadline, await provider.status(ids)
        await asyncio.sleep(0.3)
    assert (provider.counts().running, provider.counts().idle) == (4, 1)
    assert await provider.cancel([ids[4]], "idle surplus") == [ids[4]]
    ids = ids[:4]
    states = await until(provider, ids, {JobState.RUNNING})
    assert set(states) == set(ids) and provider.counts().running == 4
    [directory] = [p for p in (tmp_path / "slurm").iterdir() if p.is_dir()]
    assert stat.S_IMODE((directory / "frazil.token").stat().st_mode) == 0o600
    for _ in range(100):
        if all((directory / f"{i}.json").exists() for i in ids):
            break
        await asyncio.sleep(0.1)
    record = json.loads((directory / f"{ids[1]}.json").read_text())
    env = record["env"]
    assert env["FRAZIL_PROVIDER"] == "slurm" and env["FRAZIL_PROVIDER_JOB_ID"] == ids[1]
    assert env["SLURM_CPUS_PER_TASK"] == "2" and env["SLURM_MEM_PER_NODE"] == "1500"
    assert record["token"] == "slurm-secret" and "slurm-secret" not in " ".join(record["argv"])
    assert record["argv"][record["argv"].index("--server") + 1] == URL
    # a provider of a restarted server (same URL) finds the pilots again, with their shape
    again = make(tmp_path, slurm, json=use_json)
    await again.status()
    assert sorted(j.job_id for j in again.jobs()) == sorted(ids) and {j.shape for j in again.jobs()} == {shape}
    assert make(tmp_path, slurm, url="http://elsewhere:1").jobs() == []
    assert await provider.cancel(ids[:2], "idle surplus") == ids[:2]
    assert await until(provider, ids[:2], {JobState.CANCELLED}) == {i: JobState.CANCELLED for i in ids[:2]}
    assert (await provider.status([ids[2]]))[ids[2]] == JobState.RUNNING
    assert provider.counts().ended == {"cancelled": 3}


async def test_ended_jobs_are_read_from_the_job_completion_file(tmp_path, slurm, clean):  # noqa: F811
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "sleep").write_text("0.5")
    provider = make(tmp_path, slurm)
    ids = await provider.submit(PilotShape(memory=0.5), 2)
    assert await until(provider, ids, {JobState.COMPLETED}) == {i: JobState.COMPLETED for i in ids}
    # slurmctld forgets ended jobs after MinJobAge and its purge interval (a minute here); then the
    # provider asks sacct, and without accounting storage (as here) reads the jobcomp file Slurm wrote
    assert "accounting storage is disabled" in subprocess.run(
        ["sacct", "-j", ids[0]], env={**os.environ, **slurm.env}, capture_output=True, text=True).stderr
    fresh = make(tmp_path, slurm)
    fresh._jobs = {i: PilotJob(i, PilotShape(memory=0.5), JobState.RUNNING, time.time()) for i in ids}
    records = await fresh._finished(ids)
    assert sorted((r.job_id, r.state) for r in records) == [(i, JobState.COMPLETED) for i in sorted(ids)]
    assert fresh._accounting is False and fresh._jobcomp == slurm.jobcomp
    assert all(r.ran_for is not None and r.ran_for < 30 for r in records)


def test_batch_scripts_pass_sbatch_test_only(tmp_path, slurm):  # noqa: F811
    site = SlurmSite(partition="main", time_limit=30, cpus=2, memory=2.0, sbatch_lines=["--nice=10"])
    options = SlurmOptions(server_url=URL, submit_dir=tmp_path, command=[sys.executable, str(FAKE)])
    shape = PilotShape(cpu=1, memory=1.0, disk=2, time=5.0, site="CHTC", os=("RHEL_9_x86_64",))
    script = render_script(options, shape, site, tmp_path, tmp_path / "frazil.token")
    (tmp_path / "pilot.sh").write_text(script)
    done = subprocess.run(["sbatch", "--test-only", str(tmp_path / "pilot.sh")], env={**os.environ, **slurm.env},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "to start at" in done.stderr, done.stderr
    for line in ("--partition=main", "--time=30", "--cpus-per-task=2", "--mem=2000", "--nice=10",
                 "--job-name=frazil-pilot", "--site CHTC"):
        assert line in script
    assert shape_from_comment(script.split("--comment=")[1].split("\n")[0], URL) == shape
    gpu = render_script(options, PilotShape(gpu=2, time=1.0), SlurmSite(account="icecube", qos="long",
                        constraint="a100&ib", gres="gpu:a100"), tmp_path, tmp_path / "t")
    for line in ("--gres=gpu:a100:2", "--account=icecube", "--qos=long", "--constraint='a100&ib'", "--time=60"):
        assert line in gpu
    assert "frazil.token" not in script.split("exec ")[0].split("--comment")[0]
    # a batchsys group's pilot: its slurm entries as #SBATCH lines, --group, the group in the comment
    batchsys = checked({"slurm": {"--mail-type": "NONE"}, "condor": {"+AccountingGroup": '"x"'}})
    grouped = PilotShape(cpu=1, memory=1.0, disk=2, time=5.0, group=group_of(batchsys))
    text = render_script(options, grouped, SlurmSite(partition="main"), tmp_path, tmp_path / "frazil.token", batchsys)
    (tmp_path / "grouped.sh").write_text(text)
    done = subprocess.run(["sbatch", "--test-only", str(tmp_path / "grouped.sh")], env={**os.environ, **slurm.env},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "to start at" in done.stderr, done.stderr
    assert "#SBATCH --mail-type=NONE" in text and f"--group {grouped.group}" in text and "AccountingGroup" not in text
    assert shape_from_comment(text.split("--comment=")[1].split("\n")[0], URL) == grouped


@pytest.mark.parametrize("site, message", [
    ({"partition": "a b"}, "partition 'a b'"),
    ({"sbatch_lines": ["nice=10"]}, "is not one sbatch option"),
    ({"sbatch_lines": ["--a\n--b"]}, "is not one sbatch option"),
    ({"time_limit": -1}, "time_limit must be a whole number >= 0"),
    ({"memory": "lots"}, "memory must be a number of GB"),
    ({"constraint": "x'y"}, "one line without quotes"),
])
def test_site_settings_are_checked(site, message):
    with pytest.raises(ValueError, match=message):
        SlurmSite(**site)


def test_records_from_every_source():
    assert expand_tasks("2-5") == [2, 3, 4, 5] and expand_tasks("1,3,7-9") == [1, 3, 7, 8, 9]
    assert expand_tasks("0-10:5") == [0, 5, 10] and expand_tasks("2-3%4") == [2, 3]
    [plain, element] = from_jobcomp([
        "JobId=7 UserId=root(0) Name=frazil-pilot JobState=FAILED StartTime=2026-12-04T18:31:59 "
        "EndTime=2026-12-04T18:32:00 ArrayJobId= ArrayTaskId= ExitCode=0:53",
        "JobId=9 Name=frazil-pilot JobState=CANCELLED ArrayJobId=8 ArrayTaskId=1 ExitCode=0:15", "garbage"])
    assert (plain.job_id, plain.state, plain.ran_for) == ("7", JobState.FAILED, 1.0)
    assert (element.job_id, element.state) == ("8_1", JobState.CANCELLED)
    rows = from_sacct_text("12_3|COMPLETED|None|2026-01-01T00:00:00|2026-01-01T01:00:00|0:0\n"
                           "12_3.batch|COMPLETED|None|||0:0\n13|CANCELLED by 0|None|||0:15\n14|TIMEOUT|None|||0:0\n")
    assert [(r.job_id, r.state) for r in rows] == [("12_3", JobState.COMPLETED), ("13", JobState.CANCELLED),
                                                   ("14", JobState.FAILED)]
    sacct = {"jobs": [{"job_id": 21, "array": {"job_id": 20, "task_id": {"set": True, "number": 1}},
                       "state": {"current": ["NODE_FAIL"], "reason": "None"},
                       "time": {"start": 100, "end": 110}, "exit_code": {"return_code": {"number": 1}}}]}
    [row] = from_sacct_json(json.dumps(sacct))
    assert (row.job_id, row.state, row.ran_for) == ("20_1", JobState.FAILED, 10.0)
    assert job_state("PENDING", "JobHeldAdmin") == JobState.HELD
    assert job_state("PENDING", "Priority") == JobState.PENDING
    assert job_state("COMPLETED", exit_code="2:0") == JobState.FAILED
