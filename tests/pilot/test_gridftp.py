"""ftp:// and gsiftp:// against a real globus-gridftp-server on 127.0.0.1."""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

from common.plan.records import DataTransfer
from common.transfer import RetryPolicy, TransferError, TransferNotFound, transfer_in, transfer_out
from common.transfer.gridftp import GridFtpFiles
from pilot.runner import run_task
from tests.pilot.gridftp_support import (  # noqa: F401 (gridftp_installed is a fixture)
    Credentials, GridFtpServer, gridftp_installed, make_credentials, public_dir)
from tests.pilot.runner_plans import module, plan, script, tray

pytestmark = pytest.mark.usefixtures("gridftp_installed")
FAST = RetryPolicy(attempts=2, delay=0.1)


@pytest.fixture
def served() -> Iterator[Path]:
    base = public_dir("frazil-gridftp-")
    yield base / "data"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ftp(served: Path) -> Iterator[GridFtpServer]:
    server = GridFtpServer(served)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def credentials() -> Iterator[Credentials]:
    base = public_dir("frazil-gridftp-ca-")
    yield make_credentials(base)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def gsiftp(served: Path, credentials: Credentials, monkeypatch: pytest.MonkeyPatch) -> Iterator[GridFtpServer]:
    for key, value in credentials.client_env().items():
        monkeypatch.setenv(key, value)
    server = GridFtpServer(served, credentials)
    server.start()
    yield server
    server.stop()


def _payload(path: Path, size: int = 300_000) -> str:
    # Every byte value including CR/LF: an ASCII-mode transfer would change it.
    data = bytes(range(256)) * (size // 256) + b"\r\n\n\r"
    path.write_bytes(data)
    return hashlib.sha512(data).hexdigest()


@pytest.mark.parametrize("kind", ["ftp", "gsiftp"])
def test_upload_then_download_is_byte_exact_and_verified(kind: str, request, tmp_path: Path) -> None:
    server: GridFtpServer = request.getfixturevalue(kind)
    digest = _payload(tmp_path / "out.bin")
    url = f"{server.url}/sub/out.bin"  # sub/ does not exist yet: the upload makes it
    up = transfer_out(tmp_path / "out.bin", url, retry=FAST)
    assert (up.ok, up.sha512, up.size) == (True, digest, (tmp_path / "out.bin").stat().st_size)
    assert hashlib.sha512((server.root / "sub" / "out.bin").read_bytes()).hexdigest() == digest
    down = transfer_in(url, tmp_path / "back" / "in.bin", retry=FAST)
    assert down.sha512 == digest and (tmp_path / "back" / "in.bin").read_bytes() == (tmp_path / "out.bin").read_bytes()
    assert [p.name for p in (tmp_path / "back").iterdir()] == ["in.bin"]  # no temporary left behind


def test_missing_source_is_not_found_and_maybe_skips(ftp: GridFtpServer, tmp_path: Path) -> None:
    with pytest.raises(TransferNotFound):
        transfer_in(f"{ftp.url}/nothing.txt", tmp_path / "x", retry=FAST)
    record = transfer_in(f"{ftp.url}/nothing.txt", tmp_path / "x", optional=True, retry=FAST)
    assert record.skipped and not (tmp_path / "x").exists()
    assert list(tmp_path.glob(".x.part-*")) == []


def test_download_from_a_dead_server_fails_after_retries_and_leaves_no_file(tmp_path: Path) -> None:
    server = GridFtpServer(tmp_path / "never-started")
    with pytest.raises(TransferError) as caught:
        transfer_in(f"{server.url}/a.txt", tmp_path / "a.txt", retry=FAST)
    assert caught.value.attempts == 2 and "Connection refused" in caught.value.reason
    assert list(tmp_path.iterdir()) == []


def test_gsiftp_without_a_trusted_ca_is_refused(gsiftp: GridFtpServer, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty-ca").mkdir()
    monkeypatch.setenv("X509_CERT_DIR", str(tmp_path / "empty-ca"))
    _payload(tmp_path / "f")
    with pytest.raises(TransferError):
        transfer_out(tmp_path / "f", f"{gsiftp.url}/f", retry=FAST)
    assert not (gsiftp.root / "f").exists()


def test_missing_program_is_a_clear_permanent_error(tmp_path: Path) -> None:
    files = GridFtpFiles(program="no-such-globus-url-copy")
    with pytest.raises(TransferError) as caught:
        files.download("ftp://127.0.0.1:1/x", tmp_path / "x")
    assert "globus-gass-copy-progs" in caught.value.reason and not caught.value.retryable


async def test_stage_in_and_out_through_the_runner(ftp: GridFtpServer, tmp_path: Path) -> None:
    digest = _payload(ftp.root / "input.bin")
    copier = script(tmp_path, "copy.py", """
        import shutil
        shutil.copy("input.bin", "output.bin")
    """)
    data = [DataTransfer(url=f"{ftp.url}/input.bin", local="input.bin", movement="input"),
            DataTransfer(url=f"{ftp.url}/output.bin", local="output.bin", movement="output")]
    result = await run_task(plan([tray([module("copy", [sys.executable, copier])])], task_data=data),
                            workdir_base=tmp_path / "work", retry=FAST)
    assert result.status == "complete", result.summary()
    assert [(r.direction, r.sha512) for r in result.inputs + result.outputs] == [("in", digest), ("out", digest)]
    assert hashlib.sha512((ftp.root / "output.bin").read_bytes()).hexdigest() == digest


async def test_gridftp_server_stopped_during_stage_out_is_a_transfer_failure_never_complete(
        ftp: GridFtpServer, tmp_path: Path) -> None:
    """The module writes its output, then stops the server (as if it died
    between the module's end and the upload): the stage-out is retried, then
    the task is reset as a non-physics transfer failure."""
    stopper = script(tmp_path, "stop.py", f"""
        import os, signal
        open("big.bin", "wb").write(os.urandom(2_000_000))
        os.killpg({ftp.proc.pid}, signal.SIGKILL)
    """)
    data = [DataTransfer(url=f"{ftp.url}/big.bin", local="big.bin", movement="output")]
    result = await run_task(plan([tray([module("work", [sys.executable, stopper])])], task_data=data),
                            workdir_base=tmp_path / "work", retry=FAST)
    assert result.status == "reset", result.summary()
    assert (result.failure_class, result.kind) == ("non-physics", "transfer")
    assert result.outputs and not result.outputs[-1].ok and result.outputs[-1].attempts == 2
