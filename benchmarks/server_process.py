"""A real ``frazil server`` as a subprocess on 127.0.0.1 that tests and
benchmarks can start, kill -9 and start again on the same store (the claim
and pilot benchmarks, the reliability and pilot tests)."""
from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``frazil server`` in its own process (``python -m server.cli server``),
    on a given store and data dir, that can be killed with SIGKILL and
    started again on the same store."""

    def __init__(self, db_url: str, data_dir: str | pathlib.Path, *, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.db_url = db_url
        self.data_dir = pathlib.Path(data_dir)
        self.port = port or free_port()
        self.env = {**os.environ, "FRAZIL_DATA_DIR": str(self.data_dir), "PYTHONPATH": str(REPO), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.data_dir / f"server-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "server", "--db", self.db_url, "--port", str(self.port),
             "--provider", "none"], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"frazil server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"frazil server did not answer /healthz in {timeout:g} s: {self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        logs = sorted(self.data_dir.glob("server-*.log"))
        return logs[-1].read_text(errors="replace")[-chars:] if logs else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, no lease release, requests in flight cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def token(self, username: str, role: str = "user", groups: str = "users") -> str:
        done = subprocess.run([sys.executable, "-m", "server.cli", "token", "create", "--user", username,
                               "--role", role, "--groups", groups],
                              cwd=REPO, env=self.env, capture_output=True, text=True, check=True)
        return done.stdout.strip()
