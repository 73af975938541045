"""A runner killed with -9 takes its running module with it (no orphan keeps the slot busy)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.pilot.runner_plans import gone

REPO = Path(__file__).resolve().parents[2]


async def test_module_dies_with_a_killed_runner(tmp_path: Path) -> None:
    pid_file = tmp_path / "module.pid"
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from tests.pilot.runner_plans import one_module, run
        code = "import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
        asyncio.run(run(one_module([sys.executable, "-c", code]), Path({str(tmp_path / 'work')!r})))
    """))
    runner = subprocess.Popen([sys.executable, str(driver)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the module never started"
            time.sleep(0.05)
        module_pid = int(pid_file.read_text())
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        assert await gone(module_pid, timeout=10), "the module outlived its runner"
    finally:
        if runner.poll() is None:
            runner.kill()
