"""`frazil federation` as users start it, used by the real pelicanfs client."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.transfer import RetryPolicy, transfer_in, transfer_out
from common.transfer.pelican import PelicanFiles

FRAZIL = [sys.executable, "-m", "server.cli"]


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, dict[str, str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([*FRAZIL, "federation", "--port", "0", "--root", str(tmp_path / "root"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info: dict[str, str] = {}
    while len(info) < 7:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"federation exited: {proc.stderr.read()}")
        key, _, value = line.strip().partition(" ")
        info[key] = value
    return proc, info


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return err


def test_cli_federation_serves_pelicanfs(tmp_path):
    proc, info = _start(tmp_path, "--namespace", "/icecube/wipac")
    try:
        assert info["tokens"].startswith("not required")
        files = PelicanFiles(federation=info["federation"], ca_file=info["ca-file"])
        source = tmp_path / "f.bin"
        source.write_bytes(os.urandom(50_000))
        record = transfer_out(source, "osdf:///icecube/wipac/x/f.bin", retry=RetryPolicy(1),
                              schemes={"osdf": files})
        stored = tmp_path / "root/icecube/wipac/x/f.bin"
        assert hashlib.sha512(stored.read_bytes()).hexdigest() == record.sha512
        assert transfer_in("osdf:///icecube/wipac/x/f.bin", tmp_path / "b", retry=RetryPolicy(1),
                           schemes={"osdf": files}).sha512 == record.sha512
    finally:
        _stop(proc)


@pytest.mark.parametrize(("args", "message"), [
    (["--namespace", "relative/path"], "namespace prefix must be an absolute path"),
    (["--issuer", "ftp://x"], "--issuer must be an http(s):// URL"),
])
def test_cli_federation_bad_input_is_one_clear_line(tmp_path, args, message):
    done = subprocess.run([*FRAZIL, "federation", "--port", "0", "--root", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr


def test_cli_federation_bad_port_is_an_argparse_error(tmp_path):
    done = subprocess.run([*FRAZIL, "federation", "--port", "70000", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "port out of range" in done.stderr
