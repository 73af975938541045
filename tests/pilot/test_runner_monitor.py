"""The process-tree monitor on real process trees."""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import psutil

from common.resources import Resources
from pilot.runner.monitor import Limits, Monitor, Usage, disk_usage, parse_compute_apps
from pilot.runner.proctable import ProcTable
from tests.pilot.runner_plans import PY, gone, one_module, run, script


def test_proctable_finds_grandchildren(tmp_path: Path) -> None:
    tree = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        table = ProcTable()
        deadline = time.monotonic() + 5
        members: set[int] = {tree.pid}
        while time.monotonic() < deadline and len(members) < 3:
            table.refresh()
            members = table.grow({tree.pid})
            time.sleep(0.02)
        expected = {tree.pid} | {c.pid for c in psutil.Process(tree.pid).children()}
        assert members == expected and len(members) == 3
    finally:
        for pid in psutil.Process(tree.pid).children():
            pid.kill()
        tree.kill()
        tree.wait()


def test_disk_usage_counts_allocated_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"z" * 300_000)
    (tmp_path / "g").write_bytes(b"z" * 100_000)
    assert 400_000 <= disk_usage(tmp_path) < 500_000
    assert disk_usage(tmp_path / "missing") == 0


def test_parse_compute_apps() -> None:
    text = "1234, GPU-aaa, 512\n1234, GPU-bbb, 256\n99, GPU-aaa, [N/A]\ngarbage\n"
    parsed = parse_compute_apps(text)
    assert parsed == {1234: [("GPU-aaa", 512 << 20), ("GPU-bbb", 256 << 20)]}


async def test_usage_sums_the_whole_tree_and_counts_cpu(tmp_path: Path) -> None:
    # Two children each hold ~80 MB: only their sum crosses a 0.12 GB limit.
    holder = script(tmp_path, "hold.py", """
        import time
        block = b"m" * 80_000_000
        time.sleep(20)
    """)
    sh = script(tmp_path, "two.sh", f'"{PY}" {holder} & "{PY}" {holder} & wait\n')
    result = await run(one_module(["/bin/sh", sh]), tmp_path / "w",
                       limits=Resources(memory=0.12, time=1))
    assert result.kind == "memory", result.summary()
    assert result.resources["memory"] >= 0.12


async def test_cpu_time_is_measured_even_between_samples(tmp_path: Path) -> None:
    # 0.3 s of CPU ends before a 1 Hz monitor takes its second sample.
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    result = await run(one_module([PY, "-c", busy]), tmp_path, monitor=Monitor(interval=1.0))
    assert result.status == "complete"
    seconds = result.resources["cpu"] * result.resources["time"] * 3600
    assert 0.28 <= seconds <= 1.5, result.resources


async def test_background_leftovers_die_with_the_task(tmp_path: Path) -> None:
    prog = "sleep 60 >/dev/null 2>&1 </dev/null & echo $! > bg.pid"
    result = await run(one_module(["/bin/sh", "-c", prog]), tmp_path)
    assert result.status == "complete"
    pid = int((Path(result.workdir) / "bg.pid").read_text())
    assert await gone(pid), f"background process {pid} survived the task"
    assert "left running" in Path(result.stdlog).read_text()


async def test_limits_can_change_while_running(tmp_path: Path) -> None:
    """The pilot tightens a task's memory when others need the slot: read at every sample."""
    hold = [PY, "-c", "import time; b = b'q' * 60_000_000; time.sleep(20)"]
    current: list[Resources] = [Resources(memory=1, time=1)]

    async def tighten() -> None:
        await asyncio.sleep(0.5)
        current[0] = Resources(memory=0.03, time=1)

    helper = asyncio.create_task(tighten())
    result = await run(one_module(hold), tmp_path, limits=lambda: current[0])
    await helper
    assert result.kind == "memory", result.summary()


async def test_monitor_reports_its_own_cost(tmp_path: Path) -> None:
    monitor = Monitor(interval=0.01, gpu=False)
    proc = await asyncio.create_subprocess_exec("/bin/sleep", "0.3")
    usage = Usage()
    watch = monitor.watch(proc.pid, tmp_path, usage, lambda: Limits())
    await proc.wait()
    monitor.unwatch(watch)
    assert usage.samples >= 3 and monitor.cpu_used > 0
    assert os.getpid() not in watch.members
