"""GridFTP through the whole chain: a real pilot process stages in and out over
gsiftp:// (throw-away CA) and reports the verified output; a GridFTP server
that dies during stage-out gives a non-physics transfer failure, never complete."""
from __future__ import annotations

import hashlib
import shutil
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.pilot.gridftp_support import GridFtpServer, gridftp_installed, make_credentials, public_dir  # noqa: F401 (fixture)
from tests.pilot.pilot_support import Deployment, attempts_of, deploy, tasks_of, wait_for

pytestmark = pytest.mark.usefixtures("gridftp_installed")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path)
    yield d
    d.stop_all()


@pytest.fixture
def served() -> Iterator[Path]:
    base = public_dir("frazil-gridftp-pilot-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _config(script: Path, base_url: str, with_input: bool) -> dict[str, Any]:
    data = [{"type": "permanent", "movement": "output", "local": "out.bin", "remote": f"{base_url}/out_$(job).bin"}]
    if with_input:
        data.append({"type": "permanent", "movement": "input", "local": "in.bin", "remote": f"{base_url}/in.bin"})
    return {"version": 3.2, "tasks": [{"name": "copy", "requirements": {"memory": 0.05}, "data": data,
                                       "trays": [{"modules": [{"src": str(script)}]}]}]}


@pytest.mark.slow
async def test_pilot_moves_files_over_gsiftp(deployment: Deployment, served: Path, tmp_path: Path) -> None:
    credentials = make_credentials(served / "ca")
    server = GridFtpServer(served / "data", credentials)
    server.start()
    try:
        payload = bytes(range(256)) * 1000
        (server.root / "in.bin").write_bytes(payload)
        script = tmp_path / "copy.py"
        script.write_text("import shutil\nshutil.copy('in.bin', 'out.bin')\n")
        dataset_id = await deployment.submit(_config(script, server.url, with_input=True), jobs=1)
        deployment.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "30",
                         env=credentials.client_env())

        async def done() -> bool:
            rows = await tasks_of(deployment.db, dataset_id)
            return bool(rows) and rows[0]["status"] in ("complete", "failed")

        await wait_for(done, 60, "the gsiftp task", lambda: deployment.log("p1")[-3000:])
        [row] = await tasks_of(deployment.db, dataset_id)
        assert row["status"] == "complete"
        [attempt] = await attempts_of(deployment.db, row["task_id"])
        digest = hashlib.sha512(payload).hexdigest()
        assert [(o["url"], o["sha512"]) for o in attempt.outputs] == [(f"{server.url}/out_0.bin", digest)]
        assert (server.root / "out_0.bin").read_bytes() == payload
    finally:
        server.stop()


@pytest.mark.slow
async def test_gridftp_dying_during_stage_out_never_completes(deployment: Deployment, served: Path,
                                                               tmp_path: Path) -> None:
    server = GridFtpServer(served / "data")
    server.start()
    try:
        script = tmp_path / "stop.py"
        script.write_text(textwrap.dedent(f"""
            import os, signal
            open("out.bin", "wb").write(os.urandom(1_000_000))
            os.killpg({server.proc.pid}, signal.SIGKILL)  # the storage dies before the upload
        """))
        dataset_id = await deployment.submit(_config(script, server.url, with_input=False), jobs=1)
        # --sandbox off: the module kills the storage server, a process a sandboxed module cannot see
        deployment.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "30",
                         "--sandbox", "off")

        async def first_attempt_done() -> bool:
            rows = await tasks_of(deployment.db, dataset_id)
            return bool(rows) and any(a.end for a in await attempts_of(deployment.db, rows[0]["task_id"]))

        await wait_for(first_attempt_done, 90, "the first attempt", lambda: deployment.log("p1")[-3000:])
        [row] = await tasks_of(deployment.db, dataset_id)
        attempts = await attempts_of(deployment.db, row["task_id"])
        assert (attempts[0].status, attempts[0].failure_class, attempts[0].kind) == ("reset", "nonphysics", "transfer")
        assert row["status"] != "complete" and all(a.status != "complete" for a in attempts)
    finally:
        server.stop()
