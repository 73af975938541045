"""Limits enforced by the monitor on real processes, and eviction by stop event or SIGTERM."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from common.resources import Resources
from tests.pilot.runner_plans import PY, gone, one_module, run, script

REPO = Path(__file__).resolve().parents[2]


async def test_memory_limit_kills_and_reports_the_peak(tmp_path: Path) -> None:
    hog = script(tmp_path, "hog.py", """
        import time
        chunks = []
        for _ in range(40):  # ends by itself at 2 GB should the monitor fail
            chunks.append(b"x" * 50_000_000)
            time.sleep(0.03)
        print("survived")
    """)
    result = await run(one_module([PY, hog]), tmp_path / "w",
                       limits=Resources(memory=0.15, disk=10, time=1))
    assert result.status == "reset", result.summary()
    assert result.failure_class == "non-physics" and result.kind == "memory"
    assert result.resources["memory"] >= 0.15
    assert result.modules[0].signal == signal.SIGKILL
    assert result.modules[0].killed_for == "memory"
    assert "survived" not in Path(result.stdout).read_text()
    assert "memory limit exceeded" in Path(result.stdlog).read_text()


async def test_time_limit_kills(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await run(one_module(["/bin/sleep", "30"]), tmp_path / "w",
                       limits=Resources(time=1 / 3600))
    assert time.monotonic() - started < 10
    assert result.status == "reset", result.summary()
    assert result.kind == "time" and result.failure_class == "non-physics"
    assert result.resources["time"] >= 1 / 3600


async def test_disk_limit_kills(tmp_path: Path) -> None:
    filler = script(tmp_path, "fill.py", """
        import time
        with open("big.dat", "wb") as out:
            for _ in range(100):
                out.write(b"y" * 1_000_000)
                out.flush()
                time.sleep(0.02)
    """)
    result = await run(one_module([PY, filler]), tmp_path / "w",
                       limits=Resources(disk=0.01, memory=10, time=1))
    assert result.kind == "disk" and result.status == "reset", result.summary()
    assert result.resources["disk"] >= 0.01


async def test_stop_event_evicts_cleanly(tmp_path: Path) -> None:
    stop = asyncio.Event()
    prog = script(tmp_path, "polite.py", """
        import os, signal, sys, time
        def bye(*_):
            os.write(1, b"cleaning up\\n")  # print() may be mid-flush when the signal lands
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print("started", flush=True)
        time.sleep(30)
    """)
    seen = asyncio.Event()

    async def callback(name: str, text: str) -> None:
        if "started" in text and name == "stdout":
            seen.set()

    async def stopper() -> None:
        await asyncio.wait_for(seen.wait(), timeout=10)  # a broken script must not hang the suite
        stop.set()

    helper = asyncio.create_task(stopper())
    result = await run(one_module([PY, prog]), tmp_path / "w", stop_event=stop,
                       log_callback=callback, term_grace=5)
    assert helper.done() and not helper.exception()
    assert result.status == "reset", result.summary()
    assert result.failure_class == "non-physics" and result.kind == "eviction"
    assert Path(result.stdout).read_text() == "started\ncleaning up\n"


DRIVER = """
import asyncio, json, sys
from pathlib import Path
from common.plan.records import ModulePlan, TaskPlan, TrayPlan
from pilot.runner import Monitor, run_task, stop_on_signals

async def main():
    module = ModulePlan(name="sleep", index=0, path="m",
                        argv=[sys.executable, "-c", "print('up', flush=True); import time; time.sleep(60)"])
    plan = TaskPlan(dataset_id="d", dataset=1, job=0, jobs_submitted=1, task_name="t",
                    task_index=0, task_id="x", requirements={},
                    trays=[TrayPlan(name="t", index=0, iteration=0, path="t", modules=[module])])
    stop = asyncio.Event()
    with stop_on_signals(stop):
        result = await run_task(plan, workdir_base=Path(sys.argv[1]), stop_event=stop,
                                monitor=Monitor(interval=0.05), term_grace=2)
    print(json.dumps(result.summary()))

asyncio.run(main())
"""


def test_sigterm_to_the_runner_is_an_eviction(tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(driver), str(tmp_path / "w")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)
    stdout_file = tmp_path / "w" / "1_0_t_0" / "stdout"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if stdout_file.exists() and "up" in stdout_file.read_text():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "reset" and summary["class"] == "non-physics"
    assert summary["kind"] == "eviction"


async def test_cancelling_the_runner_kills_the_module(tmp_path: Path) -> None:
    prog = script(tmp_path, "stay.py", """
        import os, time
        open("pid", "w").write(str(os.getpid()))
        time.sleep(60)
    """)
    runner = asyncio.create_task(run(one_module([PY, prog]), tmp_path / "w"))
    pid_file = tmp_path / "w" / "20001_7_generate_0" / "pid"
    for _ in range(500):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    try:
        await runner
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("a cancelled runner must not return a result")
    assert await gone(int(pid_file.read_text())), "the module outlived its cancelled runner"
    assert "runner cancelled" in (pid_file.parent / "stdlog").read_text()
