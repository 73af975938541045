"""A real ``frazil pilot`` process against a real ``frazil server`` process.

One dataset whose job index picks what its module does: sleep and write a
file, allocate memory until killed, run past its time, segfault, print a
CVMFS error, or need more memory or time than it asked for (then complete
once the server escalated its request). Each attempt must end with the right status
and class, and the work must be reported with outputs, logs and stats.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from rest_tools.client import RestClient

from tests.pilot.pilot_support import NVIDIA_SMI, Deployment, attempts_of, deploy, tasks_of, wait_for, with_store

WORK = textwrap.dedent("""
    import ctypes, os, sys, time
    job = int(sys.argv[1])
    if job == 0:          # sleeps, writes its output
        print("working", flush=True)
        time.sleep(1)
        open("out.txt", "w").write("result of job 0\\n")
    elif job == 1:        # allocates until killed
        hog = []
        while True:
            hog.append(bytearray(20_000_000))
            time.sleep(0.05)
    elif job == 2:        # runs past its time
        time.sleep(120)
    elif job == 3:        # crashes in "compiled code"
        ctypes.string_at(0)
    elif job == 4:        # CVMFS trouble
        print("cvmfs2: failed to initialize root file catalog", file=sys.stderr, flush=True)
        sys.exit(1)
    elif job == 5:        # needs ~150 MB: killed at its 0.08 GB request, then escalated
        block = bytearray(150_000_000)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1.5)
    elif job == 6:        # needs 3.3 s: killed at its 2.88 s, then escalated to 1.5x that
        time.sleep(3.3)
    open("out.txt", "a").close()
""")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    # Escalation capped low so the memory hog's retries stay small.
    d = deploy(tmp_path, FRAZIL_MAX_MEMORY_GB="0.6", FRAZIL_MAX_TIME_HOURS="0.01")
    yield d
    d.stop_all()


def _config(script: Path) -> dict[str, Any]:
    return {"version": 3.2, "tasks": [{
        "name": "work", "requirements": {"memory": 0.08, "time": 0.0008},
        "data": [{"type": "job_temp", "movement": "output", "local": "out.txt", "transfer": "maybe"}],
        "trays": [{"modules": [{"src": str(script), "args": "$(job)"}]}]}]}


@pytest.mark.slow
async def test_pilot_runs_a_mixed_dataset_with_the_right_classes(deployment: Deployment, tmp_path: Path) -> None:
    script = tmp_path / "work.py"
    script.write_text(WORK)
    dataset_id = await deployment.submit(_config(script), jobs=7)
    # 8 cores: every job runs at once, so no task is alone in the slot and each is
    # held to its own memory request (alone, a task may use the slot's 1 GB).
    deployment.pilot("p1", "--cpus", "8", "--memory", "1", "--disk", "10", "--idle-timeout", "60")

    async def first_attempts_done() -> bool:
        rows = await tasks_of(deployment.db, dataset_id)
        if len(rows) != 7:
            return False
        firsts = [await attempts_of(deployment.db, row["task_id"]) for row in rows]
        done = all(a and a[0].end for a in firsts)
        escalated = rows[5]["status"] == "complete" and rows[6]["status"] == "complete"
        return done and escalated

    await wait_for(first_attempts_done, 90, "every first attempt and the escalated task",
                   lambda: deployment.log("p1")[-4000:])
    rows = await tasks_of(deployment.db, dataset_id)
    attempts = [await attempts_of(deployment.db, row["task_id"]) for row in rows]
    first = [a[0] for a in attempts]

    # job 0: complete, its output verified and recorded for provenance
    assert rows[0]["status"] == "complete" and first[0].status == "complete"
    [output] = first[0].outputs
    assert output["url"].startswith(deployment.server.url + "/scratch/") and output["url"].endswith("/0/out.txt")
    assert output["size"] == len("result of job 0\n") and len(output["sha512"]) == 128
    # (the store spells the class "nonphysics")
    # job 1: killed for memory -> non-physics, memory, requirement escalated
    assert (first[1].status, first[1].failure_class, first[1].kind) == ("reset", "nonphysics", "memory")
    assert first[1].requirement_changes["memory"]["new"] > 0.08
    # job 2: over time -> non-physics, time
    assert (first[2].status, first[2].failure_class, first[2].kind) == ("reset", "nonphysics", "time")
    # job 3: segfault -> physics, the task failed at once
    assert (first[3].status, first[3].failure_class, first[3].kind) == ("failed", "physics", "segfault")
    assert rows[3]["status"] == "failed"
    # job 4: CVMFS -> non-physics, retried
    assert (first[4].status, first[4].failure_class, first[4].kind) == ("reset", "nonphysics", "cvmfs")
    # job 5: memory first, then escalated and complete
    assert (first[5].kind, attempts[5][-1].status) == ("memory", "complete")
    assert attempts[5][-1].resources["memory"] > 0.08
    # job 6: over time first, then escalated and complete
    assert (first[6].kind, attempts[6][-1].status) == ("time", "complete")
    change = first[6].requirement_changes["time"]
    assert change["new"] > 0.0008 and attempts[6][-1].resources["time"] == change["new"]

    # live logs reached the server for the completed attempt, and stats were posted
    logs = await with_store(deployment.db, lambda s: s.task_logs(rows[0]["task_id"]))
    assert {entry.name for entry in logs} == {"stdout", "stdlog"}  # nothing was written to stderr
    assert any("working" in entry.data for entry in logs if entry.name == "stdout")
    cvmfs_logs = await with_store(deployment.db, lambda s: s.task_logs(rows[4]["task_id"]))
    assert any("failed to initialize root file catalog" in entry.data for entry in cvmfs_logs
               if entry.name == "stderr")
    stats = (await with_store(deployment.db, lambda s: s.list_task_stats(task_id=rows[0]["task_id"]))).rows
    assert [doc["stats"]["status"] for doc in stats] == ["complete"]


GPU_PROBE = textwrap.dedent("""
    import os, time
    print("devices=" + os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), f"pid={os.getpid()}", flush=True)
    time.sleep(3)
""")

async def test_gpu_tasks_get_their_own_device(deployment: Deployment, tmp_path: Path) -> None:
    """Two GPU tasks on a two-GPU slot (found by a fake nvidia-smi) run side by
    side, each seeing only the device the pilot gave it (a CPU task sees none); the monitor measures
    GPU use through the same fake (the monitor's first nvidia-smi call comes with
    the first module, later ones as its CPU budget allows)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    (tmp_path / "seen").mkdir()
    script = tmp_path / "gpu_probe.py"
    script.write_text(GPU_PROBE)
    config = {"version": 3.2, "tasks": [{"name": "gpu", "requirements": {"gpu": 1, "memory": 0.05},
                                         "trays": [{"modules": [{"src": str(script)}]}]}]}
    dataset_id = await deployment.submit(config, jobs=2)
    cpu_script = tmp_path / "cpu_probe.py"
    cpu_script.write_text(GPU_PROBE)
    cpu_dataset = await deployment.submit({"version": 3.2, "tasks": [{
        "name": "cpu", "requirements": {"memory": 0.05}, "trays": [{"modules": [{"src": str(cpu_script)}]}]}]}, jobs=1)
    deployment.pilot("gpu", "--cpus", "2", "--memory", "1", "--disk", "5", "--idle-timeout", "3",
                     env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_NVIDIA_SMI_MATCH": str(script),
                          "FAKE_NVIDIA_SMI_SEEN": str(tmp_path / "seen")})

    async def done() -> bool:
        rows = await tasks_of(deployment.db, dataset_id)
        return len(rows) == 2 and all(row["status"] == "complete" for row in rows)

    await wait_for(done, 40, "both GPU tasks", lambda: deployment.log("gpu")[-3000:])
    devices, measured = [], 0
    for row in await tasks_of(deployment.db, dataset_id):
        logs = await with_store(deployment.db, lambda s: s.task_logs(row["task_id"]))
        words = dict(word.split("=") for log in logs if log.name == "stdout" for word in log.data.split())
        devices.append(words["devices"])
        [attempt] = await attempts_of(deployment.db, row["task_id"])
        # GPU use is only ever measured for a module nvidia-smi listed. (Listed does not imply
        # measured: a sample can land between the listing and the end of a short module.)
        if attempt.resources_used["gpu"]:
            assert (tmp_path / "seen" / words["devices"]).exists()
            assert attempt.resources_used["gpu"] == 1
            assert attempt.resources_used["gpumem"] == pytest.approx(1024 * 2**20 / 1e9)
            measured += 1
    assert sorted(devices) == ["0", "1"] and measured >= 1

    async def cpu_done() -> bool:
        rows = await tasks_of(deployment.db, cpu_dataset)
        return bool(rows) and rows[0]["status"] == "complete"

    await wait_for(cpu_done, 30, "the CPU task", lambda: deployment.log("gpu")[-3000:])
    [row] = await tasks_of(deployment.db, cpu_dataset)
    logs = await with_store(deployment.db, lambda s: s.task_logs(row["task_id"]))
    assert "devices= " in "".join(log.data for log in logs if log.name == "stdout")  # no GPU for a CPU task
    assert "2 GPUs (host)" in deployment.log("gpu")  # counted by nvidia-smi


async def test_a_task_taken_away_is_abandoned_not_reported(deployment: Deployment, tmp_path: Path) -> None:
    """An admin puts the running task back to waiting: the next heartbeat no longer
    lists it, so the pilot stops it without reporting, and the task then runs again."""
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(60)\n")
    config = {"version": 3.2, "tasks": [{"name": "slow", "requirements": {"memory": 0.05},
                                         "trays": [{"modules": [{"src": str(script)}]}]}]}
    dataset_id = await deployment.submit(config, jobs=1)
    deployment.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "60")

    async def running() -> bool:
        rows = await tasks_of(deployment.db, dataset_id)
        return bool(rows) and rows[0]["status"] == "processing"

    await wait_for(running, 30, "the task to start", lambda: deployment.log("p1")[-3000:])
    [row] = await tasks_of(deployment.db, dataset_id)
    admin = RestClient(deployment.server.url, deployment.server.token("root", role="admin"), retries=0)
    await admin.request("PUT", f"/tasks/{row['task_id']}/status", {"status": "suspended"})

    async def abandoned() -> bool:
        return "abandoned" in deployment.log("p1")

    await wait_for(abandoned, 20, "the pilot to abandon the task", lambda: deployment.log("p1")[-3000:])
    [row] = await tasks_of(deployment.db, dataset_id)
    assert row["status"] == "suspended"  # the pilot reported nothing over the admin's decision
    attempts = await attempts_of(deployment.db, row["task_id"])
    assert all(a.status != "complete" for a in attempts)
    assert f"task {row['task_id']} (slow):" not in deployment.log("p1")  # the pilot's line for a report
