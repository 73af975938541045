"""Resource monitoring and limit enforcement for running modules (psutil).

One :class:`Monitor` serves every task of a pilot: a single asyncio loop
samples all watched process trees about once a second, sharing one ``/proc``
scan (see :mod:`pilot.runner.proctable`). ``psutil.Process`` objects are
kept between samples and read under ``oneshot()``. The work-dir walk and
``nvidia-smi`` are the expensive parts, so each is rescheduled according to
its own measured cost to keep the monitor's CPU share near a fixed budget.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

from pilot.runner.proctable import ProcTable

GB = 1e9
"""Requirements are in GB of 10⁹ bytes, as IceProd's stats (ResidentSetSize_RAW / 1e6)."""
COST_SHARE = 0.002
"""Each expensive probe (disk walk, nvidia-smi) may use about this share of one core."""
DISK_WALK_MAX_ENTRIES = 200_000


@dataclass
class Limits:
    """Hard limits for one task, in bytes and monotonic seconds; None means no limit."""

    memory: float | None = None
    disk: float | None = None
    deadline: float | None = None


LimitSource = Callable[[], Limits]


@dataclass
class Usage:
    """Peaks (and totals) measured for one task across all its modules."""

    rss_peak: int = 0
    cpu_seconds: float = 0.0
    threads_peak: int = 0
    disk_peak: int = 0
    gpus_peak: int = 0
    gpumem_peak: int = 0
    samples: int = 0


@dataclass(eq=False)
class Watch:
    """One running module's process tree, charged to its task's :class:`Usage`."""

    root: int
    workdir: Path
    usage: Usage
    limits: LimitSource
    members: set[int] = field(default_factory=set)
    violation: str | None = None
    """"time" | "memory" | "disk" once a limit was broken and the tree killed."""
    detail: str = ""
    cpu_now: float = 0.0
    _procs: dict[int, psutil.Process] = field(default_factory=dict)
    _next_disk: float = 0.0


def disk_usage(root: Path, max_entries: int = DISK_WALK_MAX_ENTRIES) -> int:
    """Allocated bytes under ``root`` (st_blocks, so sparse files count what they use)."""
    total = 0
    seen = 0
    stack = [str(root)]
    while stack and seen < max_entries:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    continue
    return total


def kill_tree(pids: set[int], sig: int = signal.SIGKILL) -> None:
    """Signal every process of a tree, and each one's process group where it leads one."""
    for pid in pids:
        try:
            psutil.Process(pid).send_signal(sig)
        except psutil.Error:
            pass


class Monitor:
    """Samples watched trees and kills those over a limit."""

    def __init__(self, interval: float = 1.0, *, gpu: bool | None = None) -> None:
        self.interval = interval
        self._watches: set[Watch] = set()
        self._table = ProcTable()
        self._task: asyncio.Task[None] | None = None
        self._gpu = shutil.which("nvidia-smi") is not None if gpu is None else gpu
        self._next_gpu = 0.0
        self.cpu_used = 0.0
        """CPU seconds the sampling itself consumed (for the benchmark)."""
        self.errors = 0
        self.last_error: str | None = None

    def watch(self, root: int, workdir: Path, usage: Usage, limits: LimitSource) -> Watch:
        entry = Watch(root=root, workdir=workdir, usage=usage, limits=limits, members={root})
        self._watches.add(entry)
        if self._next_gpu == 0.0:
            # The first nvidia-smi call waits a moment: a module started through a sandbox or
            # an env_shell has not reached its GPU program in the first milliseconds.
            self._next_gpu = time.monotonic() + min(1.0, self.interval)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return entry

    def unwatch(self, entry: Watch) -> None:
        self._watches.discard(entry)

    def sample_now(self, entry: Watch) -> None:
        """One immediate sample (start and end of a module catch short peaks)."""
        self._table.refresh()
        self._sample(entry, time.monotonic(), force_disk=True)

    async def _run(self) -> None:
        while self._watches:
            started = time.thread_time()
            now = time.monotonic()
            try:
                self._table.refresh()
                for entry in list(self._watches):
                    self._sample(entry, now)
                if self._gpu and now >= self._next_gpu and self._watches:
                    await self._sample_gpus()
            except Exception as exc:  # one bad tick must not end limit enforcement for all
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            self.cpu_used += time.thread_time() - started
            await asyncio.sleep(self.interval)

    def _sample(self, entry: Watch, now: float, force_disk: bool = False) -> None:
        entry.members = self._table.grow(entry.members)
        rss = threads = 0
        cpu = 0.0
        for pid in entry.members:
            proc = entry._procs.get(pid)
            if proc is None:
                try:
                    proc = entry._procs[pid] = psutil.Process(pid)
                except psutil.Error:
                    continue
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    threads += proc.num_threads()
            except psutil.Error:
                continue
            cpu += times.user + times.system + times.children_user + times.children_system
        for pid in set(entry._procs) - entry.members:
            del entry._procs[pid]
        usage = entry.usage
        usage.samples += 1
        usage.rss_peak = max(usage.rss_peak, rss)
        usage.threads_peak = max(usage.threads_peak, threads)
        entry.cpu_now = max(entry.cpu_now, cpu)
        if force_disk or now >= entry._next_disk:
            walk_started = time.thread_time()
            usage.disk_peak = max(usage.disk_peak, disk_usage(entry.workdir))
            cost = time.thread_time() - walk_started
            entry._next_disk = now + max(self.interval, cost / COST_SHARE)
        self._enforce(entry, now, rss, usage.disk_peak)

    def _enforce(self, entry: Watch, now: float, rss: int, disk: int) -> None:
        if entry.violation is not None or not entry.members:
            return
        limits = entry.limits()
        if limits.deadline is not None and now > limits.deadline:
            entry.violation, entry.detail = "time", "wall time limit exceeded"
        elif limits.memory is not None and rss > limits.memory:
            entry.violation = "memory"
            entry.detail = (f"memory limit exceeded: {rss / GB:.3f} GB resident, "
                            f"limit {limits.memory / GB:.3f} GB")
        elif limits.disk is not None and disk > limits.disk:
            entry.violation = "disk"
            entry.detail = (f"disk limit exceeded: {disk / GB:.3f} GB in the work dir, "
                            f"limit {limits.disk / GB:.3f} GB")
        if entry.violation is not None:
            kill_tree(entry.members)

    async def _sample_gpus(self) -> None:
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                "nvidia-smi", "--query-compute-apps=pid,gpu_uuid,used_memory",
                "--format=csv,noheader,nounits",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
        except (OSError, asyncio.TimeoutError):
            self._next_gpu = time.monotonic() + 300
            return
        per_pid = parse_compute_apps(out.decode(errors="replace"))
        self._table.refresh()  # processes that started while nvidia-smi ran are the tasks' too
        for entry in self._watches:
            entry.members = self._table.grow(entry.members)
            gpus: set[str] = set()
            mem = 0
            for pid in entry.members:
                for uuid, used in per_pid.get(pid, []):
                    gpus.add(uuid)
                    mem += used
            entry.usage.gpus_peak = max(entry.usage.gpus_peak, len(gpus))
            entry.usage.gpumem_peak = max(entry.usage.gpumem_peak, mem)
        cost = time.monotonic() - started
        self._next_gpu = time.monotonic() + max(10 * self.interval, cost / COST_SHARE)


def parse_compute_apps(text: str) -> dict[int, list[tuple[str, int]]]:
    """``nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory`` (MiB) → bytes per pid."""
    out: dict[int, list[tuple[str, int]]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            pid, used = int(parts[0]), int(float(parts[2]) * (1 << 20))
        except ValueError:
            continue
        out.setdefault(pid, []).append((parts[1], used))
    return out
