"""Failed modules are classified through common.errors: reset (non-physics) or failed (physics)."""
from __future__ import annotations

from pathlib import Path

from tests.pilot.runner_plans import PY, module, one_module, plan, run, tray

CVMFS_LINE = ("Failed to open /cvmfs/icecube.opensciencegrid.org/py3-v4.3.0/setup.sh: "
              "Transport endpoint is not connected (CVMFS error)")


async def test_cvmfs_error_is_non_physics_reset(tmp_path: Path) -> None:
    code = f"import sys; print({CVMFS_LINE!r}, file=sys.stderr); sys.exit(1)"
    result = await run(one_module([PY, "-c", code]), tmp_path)
    assert result.status == "reset", result.summary()
    assert result.failure_class == "non-physics" and result.kind == "cvmfs"
    assert result.rule
    assert result.modules[0].exit_code == 1


async def test_plain_error_is_physics_failed(tmp_path: Path) -> None:
    code = "raise ValueError('energy out of range in my generator')"
    result = await run(one_module([PY, "-c", code]), tmp_path)
    assert result.status == "failed", result.summary()
    assert result.failure_class == "physics"
    summary = result.summary()
    assert summary["class"] == "physics" and summary["status"] == "failed"
    assert "exited with status 1" in summary["reason"] or summary["reason"]


async def test_first_failure_stops_the_task(tmp_path: Path) -> None:
    task = plan([tray([module("bad", [PY, "-c", "import sys; sys.exit(3)"]),
                       module("never", [PY, "-c", "print('ran')"])])])
    result = await run(task, tmp_path)
    assert result.status == "failed"
    assert [m.name for m in result.modules] == ["bad"]
    assert result.modules[0].exit_code == 3
    assert not Path(result.stdout).read_text()


async def test_segfault_follows_the_error_policy(tmp_path: Path) -> None:
    from common.errors import FailureEvidence, classify

    result = await run(one_module([PY, "-c", "import ctypes; ctypes.string_at(0)"]), tmp_path)
    record = result.modules[0]
    assert record.signal == 11 and record.exit_code is None
    policy = classify(FailureEvidence(exit_code=None, signal=11, stderr_tail="",
                                      stdout_tail="", stdlog_tail="", reason="",
                                      kind_hint=None))
    assert result.failure_class == policy.failure_class
    assert result.status == ("reset" if policy.failure_class == "non-physics" else "failed")


async def test_command_not_found_is_reported_like_a_shell(tmp_path: Path) -> None:
    result = await run(one_module(["/nonexistent/bin/prog", "x"]), tmp_path)
    assert result.status in ("reset", "failed")
    assert result.modules[0].exit_code == 127
    assert "/nonexistent/bin/prog: command not found" in Path(result.stderr).read_text()
