"""``frazil pilot`` on the command line: bad input is one clear line, never a traceback."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.server.conftest import RunningServer, server, server_settings  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]


async def _frazil(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "pilot", *args, cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("args, message", [
    ((), "no server address: set FRAZIL_URL"),
    (("--server", "http://127.0.0.1:1"), "no token: set FRAZIL_TOKEN or FRAZIL_TOKEN_FILE"),
    (("--server", "ftp://host", "--token", "t"), "--server 'ftp://host': expected an http:// or https:// address"),
    (("--server", "http://127.0.0.1:1", "--token-file", "/no/such/file"), "--token-file /no/such/file: cannot read"),
    (("--server", "http://127.0.0.1:1", "--token", "t", "--memory", "12XB"), "cannot read size '12XB'"),
    (("--server", "http://127.0.0.1:1", "--token", "t", "--cpus", "-1"), "--cpus: must be >= 0"),
])
async def test_bad_input_is_one_clear_line(args: tuple[str, ...], message: str) -> None:
    code, _, err = await _frazil(*args)
    assert code != 0 and message in err and "Traceback" not in err


async def test_a_non_pilot_token_is_refused_and_the_pilot_exits_1(server: RunningServer, tmp_path: Path) -> None:
    code, _, err = await _frazil("--server", server.url, "--token", server.token("alice"), "--cpus", "1",
                                 "--memory", "1", "--disk", "1", "--workdir", str(tmp_path / "w"))
    assert code == 1 and "registration refused" in err and "Traceback" not in err


async def test_token_from_the_environment_and_idle_exit(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(server.token("pilot-9", role="pilot") + "\n")
    code, _, err = await _frazil("--cpus", "1", "--memory", "1", "--disk", "1", "--idle-timeout", "0.5",
                                 "--workdir", str(tmp_path / "w"),
                                 env={"FRAZIL_URL": server.url, "FRAZIL_TOKEN_FILE": str(tmp_path / "token")})
    assert code == 0 and "registered as pilot" in err and "exits (idle)" in err, err
    assert await server.store.list_pilots() == []  # deregistered


async def test_the_htcondor_ads_define_the_slot(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "machine.ad").write_text('Cpus = 3\nMemory = 2500\nDisk = 7000000\nGLIDEIN_Site = "WIPAC"\n')
    code, _, err = await _frazil("--server", server.url, "--token", server.token("pilot-2", role="pilot"),
                                 "--cpus", "64", "--idle-timeout", "0.3", "--workdir", str(tmp_path / "w"),
                                 env={"_CONDOR_MACHINE_AD": str(tmp_path / "machine.ad")})
    assert code == 0, err
    assert "3 cores (ad), 0 GPUs" in err and "2.5 GB memory (ad), 7 GB disk (ad)" in err and "site WIPAC" in err
