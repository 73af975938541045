"""Slot detection: HTCondor ads, flags, the host, OS names and GPUs (a fake
``nvidia-smi`` on PATH prints what a real one prints)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from pilot.detect import Flags, UNLIMITED_HOURS, ad_lifetime_end, detect_slot, os_string, parse_classad, visible_gpus
from tests.pilot.pilot_support import NVIDIA_SMI

MACHINE_AD = """Cpus = 4
GPUs = 1
Memory = 8000
Disk = 20000000
GLIDEIN_Site = "WIPAC"
Name = "slot1@node17.example.org"
"""


@pytest.fixture
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "nvidia-smi"
    program.write_text(NVIDIA_SMI)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return program


def test_parse_classad_unquotes_and_lowercases() -> None:
    ad = parse_classad(MACHINE_AD + "# comment\n[\nbroken line\n")
    assert ad["cpus"] == "4" and ad["glidein_site"] == "WIPAC" and ad["name"] == "slot1@node17.example.org"
    assert "broken line" not in ad


def test_machine_ad_wins_over_flags_and_host(tmp_path: Path) -> None:
    (tmp_path / "machine.ad").write_text(MACHINE_AD)
    env = {"_CONDOR_MACHINE_AD": str(tmp_path / "machine.ad"), "CUDA_VISIBLE_DEVICES": "GPU-x"}
    slot = detect_slot(tmp_path, Flags(cpus=64, memory=500, site="elsewhere"), env)
    assert (slot.cpu, slot.gpu, slot.memory, slot.disk, slot.site) == (4, 1, 8.0, 20.0, "WIPAC")
    assert slot.sources["cpu"] == "ad" and slot.sources["memory"] == "ad"


def test_flags_then_host(tmp_path: Path) -> None:
    slot = detect_slot(tmp_path, Flags(cpus=3, gpus=0, time=2.0, site="lab"), {}, now=1000.0)
    assert (slot.cpu, slot.gpu, slot.site, slot.end) == (3, 0, "lab", 1000.0 + 7200)
    assert slot.memory == pytest.approx(psutil.virtual_memory().total / 1e9, rel=1e-3)
    assert 0 < slot.disk and slot.sources["memory"] == "host" and slot.sources["cpu"] == "flag"
    assert detect_slot(tmp_path, Flags(), {}).hours_left() == UNLIMITED_HOURS


def test_lifetime_from_the_job_ad(tmp_path: Path) -> None:
    assert ad_lifetime_end({"glidein_todie": "5000"}, {}) == 5000.0
    assert ad_lifetime_end({}, {"jobcurrentstartdate": "1000", "maxwalltimemins": "60"}) == 4600.0
    assert ad_lifetime_end({}, {"jobstartdate": "1000", "maxruntime": "600"}) == 1600.0
    assert ad_lifetime_end({}, {"maxruntime": "600"}) is None
    (tmp_path / "job.ad").write_text('JobCurrentStartDate = 1000\nMaxWallTimeMins = 60\nRequestCpus = 2\n')
    slot = detect_slot(tmp_path, Flags(time=100.0), {"_CONDOR_JOB_AD": str(tmp_path / "job.ad")}, now=1000.0)
    assert slot.end == 4600.0 and slot.hours_left(now=1000.0) == 1.0 and slot.cpu == 2


@pytest.mark.parametrize("release, name", [
    ('ID=debian\nVERSION_ID="12"\n', "DEBIAN_12_x86_64"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n', "RHEL_9_x86_64"),
    ('ID="centos"\nVERSION_ID="7"\n', "RHEL_7_x86_64"),
    ('ID="almalinux"\nVERSION_ID="8.9"\n', "RHEL_8_x86_64"),
    ('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n', "UBUNTU_22_x86_64"),
])
def test_os_string_like_the_tutorial(release: str, name: str) -> None:
    assert os_string(release, "x86_64") == name


def test_gpus_from_nvidia_smi(fake_nvidia_smi: Path, tmp_path: Path) -> None:
    gpus = visible_gpus({})
    assert [(g.index, g.name, g.memory_mb) for g in gpus] == [("0", "NVIDIA A100-SXM4-40GB", 40960.0),
                                                              ("1", "NVIDIA A100-SXM4-40GB", 40960.0)]
    slot = detect_slot(tmp_path, Flags(cpus=1), dict(os.environ))
    assert slot.gpu == 2 and slot.sources["gpu"] == "host"


def test_cuda_visible_devices_limits_the_gpus(fake_nvidia_smi: Path) -> None:
    assert [g.index for g in visible_gpus({"CUDA_VISIBLE_DEVICES": "1"})] == ["1"]
    by_uuid = visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-a93d2e77-51f4-4b4e-8a55-3c2b9f0e7d21"})
    assert [g.index for g in by_uuid] == ["1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []


def test_no_nvidia_smi_no_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible_gpus({}) == []
    assert [g.index for g in visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1"})] == ["0", "1"]


def test_os_from_the_machine_ad_then_the_flag_then_the_host(tmp_path: Path) -> None:
    from pilot.detect import ad_os

    assert ad_os({"os_arch": "RHEL_7_x86_64"}) == "RHEL_7_x86_64"
    assert ad_os({"opsysandver": "AlmaLinux9", "arch": "X86_64"}) == "RHEL_9_x86_64"
    assert ad_os({"opsysandver": "Ubuntu22", "arch": "X86_64"}) == "UBUNTU_22_x86_64"
    assert ad_os({"opsysandver": "Windows10", "arch": "X86_64"}) == ""
    ad = tmp_path / "machine.ad"
    ad.write_text('OpSysAndVer = "CentOS7"\nArch = "X86_64"\nCpus = 1\nMemory = 1000\nDisk = 1000000\n')
    release = 'ID=debian\nVERSION_ID="12"\n'
    slot = detect_slot(tmp_path, Flags(os="RHEL_8_x86_64"), {"_CONDOR_MACHINE_AD": str(ad)}, os_release=release)
    assert (slot.os, slot.sources["os"]) == ("RHEL_7_x86_64", "ad")
    # started inside an OS image (+SingularityImage): the ad names the host's OS, the flag the pilot's
    slot = detect_slot(tmp_path, Flags(image_os="RHEL_9_x86_64"), {"_CONDOR_MACHINE_AD": str(ad)}, os_release=release)
    assert (slot.os, slot.sources["os"]) == ("RHEL_9_x86_64", "image")
    slot = detect_slot(tmp_path, Flags(os="RHEL_8_x86_64", cpus=1, memory=1, disk=1), {}, os_release=release)
    assert (slot.os, slot.sources["os"]) == ("RHEL_8_x86_64", "flag")
    slot = detect_slot(tmp_path, Flags(cpus=1, memory=1, disk=1), {}, os_release=release)
    assert slot.os.startswith("DEBIAN_12_") and slot.sources["os"] == "host"
