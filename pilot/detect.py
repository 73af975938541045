"""What slot the pilot runs in: resources, lifetime, OS and site (DESIGN.md §3.5).

Order of trust for each value: the HTCondor machine/job ads (what the batch
system actually granted, ``_CONDOR_MACHINE_AD`` / ``_CONDOR_JOB_AD``), else the
Slurm allocation (``SLURM_*`` variables and the job's end time), else the
command-line flags, else what the host has. A pilot that claimed the host's
64 cores inside a 1-core HTCondor slot would be killed by HTCondor, so the ad
wins over everything.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import psutil

from common.osarch import os_string  # re-exported: the pilot's OS name

UNLIMITED_HOURS = 24.0 * 365
"""Lifetime of a pilot with no known end (a year: longer than any task asks for)."""


@dataclass
class Gpu:
    index: str
    uuid: str = ""
    name: str = ""
    memory_mb: float = 0.0


@dataclass
class Slot:
    """The pilot's totals: cpu, gpu counts, memory and disk in GB, lifetime end."""

    cpu: int
    gpu: int
    memory: float
    disk: float
    end: float | None
    """Unix time the slot ends (None: no known end)."""
    os: str
    site: str = ""
    gpus: list[Gpu] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    """Where each value came from (ad | flag | host), for the pilot's log."""

    def describe(self) -> str:
        """One line for the pilot's log, with where each value came from."""
        lifetime = "no end" if self.end is None else f"{self.hours_left():.2f} h left"
        src = self.sources
        return (f"{self.cpu} cores ({src.get('cpu')}), {self.gpu} GPUs ({src.get('gpu')}), "
                f"{self.memory:g} GB memory ({src.get('memory')}), {self.disk:g} GB disk ({src.get('disk')}), "
                f"lifetime {lifetime} ({src.get('time')}), OS {self.os} ({src.get('os')}), site {self.site or '-'}")

    def hours_left(self, now: float | None = None) -> float:
        if self.end is None:
            return UNLIMITED_HOURS
        return (self.end - (time.time() if now is None else now)) / 3600.0


def parse_classad(text: str) -> dict[str, str]:
    """``Name = value`` lines of a (new-style, one attribute per line) ad file.

    Values keep their text; quoted strings lose their quotes. Attribute names
    are case-insensitive in ClassAds, so keys are lower-cased.
    """
    ad: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep or not name.strip() or name.strip().startswith(("#", "[")):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        ad[name.strip().lower()] = value
    return ad


def read_ad(environ: Mapping[str, str], variable: str) -> dict[str, str]:
    path = environ.get(variable, "")
    if not path:
        return {}
    try:
        return parse_classad(Path(path).read_text(errors="replace"))
    except OSError:
        return {}


def _number(ad: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        raw = ad.get(name.lower())
        if raw is None:
            continue
        try:
            return float(raw)
        except ValueError:
            continue
    return None


def ad_lifetime_end(machine: Mapping[str, str], job: Mapping[str, str]) -> float | None:
    """When the slot ends according to the ads.

    Glideins publish ``GLIDEIN_ToDie`` (absolute time). A plain HTCondor job's
    wall-time limit is ``MaxWallTimeMins`` or ``MaxRuntime``/``MaxJobRetirementTime``
    (seconds) counted from ``JobCurrentStartDate`` (or ``JobStartDate``).
    """
    to_die = _number(machine, "GLIDEIN_ToDie") or _number(job, "GLIDEIN_ToDie")
    if to_die:
        return to_die
    start = _number(job, "JobCurrentStartDate", "JobStartDate")
    if start is None:
        return None
    minutes = _number(job, "MaxWallTimeMins")
    if minutes:
        return start + minutes * 60
    seconds = _number(job, "MaxRuntime")
    if seconds:
        return start + seconds
    return None


_AD_OS_FAMILIES = {"centos": "RHEL", "redhat": "RHEL", "rhel": "RHEL", "almalinux": "RHEL", "rocky": "RHEL",
                   "scientificlinux": "RHEL", "sl": "RHEL", "ubuntu": "UBUNTU", "debian": "DEBIAN"}


def ad_os(machine: Mapping[str, str]) -> str:
    """The slot's OS_ARCH from the machine ad: ``OS_ARCH`` where the glidein publishes it,
    else from ``OpSysAndVer`` (``AlmaLinux9``, ``CentOS7``) and ``Arch`` (``X86_64``)."""
    if machine.get("os_arch"):
        return machine["os_arch"]
    name_ver, arch = machine.get("opsysandver", ""), machine.get("arch", "")
    family = name_ver.rstrip("0123456789").lower()
    version = name_ver[len(family):]
    if not version or not arch or family not in _AD_OS_FAMILIES:
        return ""
    return f"{_AD_OS_FAMILIES[family]}_{version}_{arch.lower()}"


def visible_gpus(environ: Mapping[str, str], nvidia_smi: str | None = "nvidia-smi") -> list[Gpu]:
    """GPUs this slot may use: ``CUDA_VISIBLE_DEVICES`` when set (HTCondor and
    most batch systems set it to the slot's share), else every GPU
    ``nvidia-smi`` lists."""
    listed = _nvidia_smi_gpus(nvidia_smi) if nvidia_smi else []
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return listed
    words = [w.strip() for w in visible.split(",") if w.strip()]
    if not words or words[0] in ("-1", "NoDevFiles"):
        return []
    by_key = {g.index: g for g in listed} | {g.uuid: g for g in listed if g.uuid}
    return [by_key.get(w, Gpu(index=w)) for w in words]


def _nvidia_smi_gpus(program: str) -> list[Gpu]:
    path = shutil.which(program)
    if path is None:
        return []
    try:
        done = subprocess.run([path, "--query-gpu=index,uuid,name,memory.total",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    gpus = []
    for line in done.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4 or not parts[0]:
            continue
        try:
            memory = float(parts[3])
        except ValueError:
            memory = 0.0
        gpus.append(Gpu(index=parts[0], uuid=parts[1], name=parts[2], memory_mb=memory))
    return gpus


@dataclass
class Allocation:
    """What a Slurm job was granted (None: not said)."""

    cpu: float | None = None
    memory: float | None = None
    """GB (Slurm's MB / 1000, as frazil asked with ``--mem``)."""
    gpu: float | None = None
    disk: float | None = None
    """Slurm grants no disk: always None (flags or the host's free space decide)."""
    end: float | None = None


def _env_number(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip().split("(")[0]  # SLURM_CPUS_ON_NODE may read "4(x2)" elsewhere
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def slurm_end_time(environ: Mapping[str, str], run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
                   ) -> float | None:
    """When the Slurm job is killed: ``SLURM_JOB_END_TIME`` (Slurm 23.02+), else squeue's %e."""
    end = _env_number(environ, "SLURM_JOB_END_TIME")
    if end:
        return end
    job = environ.get("SLURM_JOB_ID", "")
    if not job.isdigit():
        return None
    try:
        done = run(["squeue", "-h", "-j", job, "-o", "%e"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    if done.returncode != 0 or not text or text in ("N/A", "NONE", "Unknown"):
        return None
    try:
        from datetime import datetime
        return datetime.fromisoformat(text).timestamp()  # squeue prints local time
    except ValueError:
        return None


def slurm_allocation(environ: Mapping[str, str],
                     end_time: Callable[[Mapping[str, str]], float | None] = slurm_end_time) -> Allocation:
    """The slot of a pilot inside a Slurm job (an empty Allocation outside one).

    CPUs: ``SLURM_CPUS_PER_TASK``, else ``SLURM_CPUS_ON_NODE``; memory:
    ``SLURM_MEM_PER_NODE``, else ``SLURM_MEM_PER_CPU`` x CPUs (MB); GPUs: the
    ids in ``SLURM_JOB_GPUS`` (else ``SLURM_GPUS_ON_NODE``; the pilot's GPU
    list still comes from ``CUDA_VISIBLE_DEVICES``); lifetime: the job's end.
    """
    if not environ.get("SLURM_JOB_ID"):
        return Allocation()
    cpu = _env_number(environ, "SLURM_CPUS_PER_TASK") or _env_number(environ, "SLURM_CPUS_ON_NODE")
    memory_mb = _env_number(environ, "SLURM_MEM_PER_NODE")
    if memory_mb is None:
        per_cpu = _env_number(environ, "SLURM_MEM_PER_CPU")
        memory_mb = per_cpu * cpu if per_cpu is not None and cpu else None
    gpu_ids = [g for g in environ.get("SLURM_JOB_GPUS", "").split(",") if g.strip()]
    gpu = float(len(gpu_ids)) if gpu_ids else _env_number(environ, "SLURM_GPUS_ON_NODE")
    if gpu is None and environ.get("CUDA_VISIBLE_DEVICES") is not None:
        gpu = float(len(visible_gpus(environ, nvidia_smi=None)))
    return Allocation(cpu=cpu, memory=memory_mb / 1000 if memory_mb is not None else None, gpu=gpu,
                      end=end_time(environ))


@dataclass
class Flags:
    """Values given on the command line (None: not given)."""

    cpus: int | None = None
    gpus: int | None = None
    memory: float | None = None
    disk: float | None = None
    time: float | None = None
    site: str | None = None
    os: str | None = None
    image_os: str | None = None
    """--image-os: the batch system started this pilot inside that OS's image (HTCondor
    +SingularityImage), so the machine ad's OS is the host's, not the pilot's."""


def detect_slot(workdir: Path, flags: Flags, environ: Mapping[str, str] | None = None,
                *, now: float | None = None, os_release: str | None = None) -> Slot:
    env = os.environ if environ is None else environ
    now = time.time() if now is None else now
    machine = read_ad(env, "_CONDOR_MACHINE_AD")
    job = read_ad(env, "_CONDOR_JOB_AD")
    slurm = slurm_allocation(env) if not machine and not job else Allocation()
    sources: dict[str, str] = {}

    def pick(name: str, ad_value: float | None, flag: float | None, host: Callable[[], float]) -> float:
        if ad_value is not None:
            sources[name] = "ad"
            return ad_value
        granted = getattr(slurm, name)
        if granted is not None:
            sources[name] = "slurm"
            return float(granted)
        if flag is not None:
            sources[name] = "flag"
            return flag
        sources[name] = "host"
        return host()

    cpu = pick("cpu", _number(machine, "Cpus") or _number(job, "RequestCpus"), flags.cpus,
               lambda: len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else psutil.cpu_count())
    memory_mb = _number(machine, "Memory") or _number(job, "RequestMemory")
    memory = pick("memory", memory_mb / 1000 if memory_mb is not None else None, flags.memory,
                  lambda: psutil.virtual_memory().total / 1e9)
    disk_kb = _number(machine, "Disk") or _number(job, "RequestDisk")
    disk = pick("disk", disk_kb / 1e6 if disk_kb is not None else None, flags.disk,
                lambda: shutil.disk_usage(workdir).free / 1e9)
    gpus: list[Gpu] = []
    ad_gpus = _number(machine, "GPUs") or _number(job, "RequestGPUs")
    if ad_gpus is None and flags.gpus is None and slurm.gpu is None:
        gpus = visible_gpus(env)
    gpu = pick("gpu", ad_gpus, flags.gpus, lambda: len(gpus))
    if gpu and not gpus:
        gpus = visible_gpus(env)[:int(gpu)]
    end = ad_lifetime_end(machine, job)
    if end is not None:
        sources["time"] = "ad"
    elif slurm.end is not None:
        sources["time"] = "slurm"
        end = slurm.end
    elif flags.time is not None:
        sources["time"] = "flag"
        end = now + flags.time * 3600
    else:
        sources["time"] = "host"
    site = machine.get("glidein_site") or job.get("glidein_site") or flags.site or ""
    os_name = flags.image_os or ad_os(machine) or flags.os or os_string(os_release)
    sources["os"] = "image" if flags.image_os else "ad" if ad_os(machine) else "flag" if flags.os else "host"
    return Slot(cpu=max(int(cpu), 0), gpu=max(int(gpu), 0), memory=round(max(memory, 0.0), 3),
                disk=round(max(disk, 0.0), 3), end=end, os=os_name, site=site,
                gpus=gpus, sources=sources)
