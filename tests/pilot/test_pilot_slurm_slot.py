"""A pilot inside a Slurm job sizes its slot from the allocation (the
variables slurmd sets, the job's end time), ahead of flags and the host.
The real-Slurm end-to-end tests (tests/provisioning/test_slurm_e2e.py) run
the same code inside real jobs."""
from __future__ import annotations

import subprocess
from pathlib import Path

from pilot.detect import Flags, detect_slot, slurm_allocation, slurm_end_time

JOB = {"SLURM_JOB_ID": "42", "SLURM_CPUS_ON_NODE": "8", "SLURM_MEM_PER_NODE": "4000"}


def no_end(_env):
    return None


def test_cpus_memory_gpus_and_end_from_the_allocation(tmp_path: Path) -> None:
    env = {**JOB, "SLURM_CPUS_PER_TASK": "2", "SLURM_JOB_GPUS": "0,1", "SLURM_JOB_END_TIME": "5000"}
    slot = detect_slot(tmp_path, Flags(cpus=64, memory=500, gpus=0, time=100.0), env, now=1000.0)
    assert (slot.cpu, slot.memory, slot.gpu, slot.end) == (2, 4.0, 2, 5000.0)
    assert {slot.sources[k] for k in ("cpu", "memory", "gpu", "time")} == {"slurm"}
    assert slot.sources["disk"] == "host"  # Slurm grants no disk


def test_memory_per_cpu_and_cuda_visible_devices() -> None:
    env = {"SLURM_JOB_ID": "7", "SLURM_CPUS_ON_NODE": "4", "SLURM_MEM_PER_CPU": "1500",
           "CUDA_VISIBLE_DEVICES": "0"}
    alloc = slurm_allocation(env, end_time=no_end)
    assert (alloc.cpu, alloc.memory, alloc.gpu, alloc.end) == (4.0, 6.0, 1.0, None)


def test_outside_slurm_nothing_is_taken_from_slurm(tmp_path: Path) -> None:
    assert slurm_allocation({"SLURM_CPUS_ON_NODE": "8"}) == slurm_allocation({})
    slot = detect_slot(tmp_path, Flags(cpus=3, memory=2.0, time=1.0), {"SLURM_CPUS_ON_NODE": "8"}, now=0.0)
    assert (slot.cpu, slot.memory, slot.end) == (3, 2.0, 3600.0)


def test_the_end_time_from_squeue_when_slurm_does_not_export_it() -> None:
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout="2026-01-02T03:04:05\n", stderr="")
    import datetime
    end = slurm_end_time({"SLURM_JOB_ID": "42"}, run=run)
    assert calls == [["squeue", "-h", "-j", "42", "-o", "%e"]]
    assert end == datetime.datetime(2026, 1, 2, 3, 4, 5).timestamp()
    assert slurm_end_time({"SLURM_JOB_ID": "42", "SLURM_JOB_END_TIME": "99"}, run=run) == 99.0
    assert slurm_end_time({"SLURM_JOB_ID": "42"}, run=lambda a, **k: subprocess.CompletedProcess(a, 1, "", "x")) is None

    def missing(argv, **kwargs):
        raise FileNotFoundError(argv[0])
    assert slurm_end_time({"SLURM_JOB_ID": "42"}, run=missing) is None
