"""A real ``frazil server`` process on a real SQLite store, and real ``frazil pilot``
processes against it, for the end-to-end pilot tests."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import psutil

from benchmarks.server_process import ServerProcess
from server.auth import default_rights
from server.store import Attempt, NewDataset, Store, TaskFilter, open_store

REPO = Path(__file__).resolve().parents[2]
NVIDIA_SMI = """#!/bin/sh
# What a real nvidia-smi prints for the two queries frazil makes. Compute apps:
# every python process running the script $FAKE_NVIDIA_SMI_MATCH uses 1024 MiB
# on GPU 0 (host pids, as the real one reports them, also for sandboxed modules);
# each one is noted in $FAKE_NVIDIA_SMI_SEEN/<its CUDA_VISIBLE_DEVICES>.
case "$*" in
  *--query-gpu=*)
    echo "0, GPU-5e1b8c4a-27c1-4f0e-9d0a-0c7e6b1a2f10, NVIDIA A100-SXM4-40GB, 40960"
    echo "1, GPU-a93d2e77-51f4-4b4e-8a55-3c2b9f0e7d21, NVIDIA A100-SXM4-40GB, 40960"
    ;;
  *--query-compute-apps=*)
    if [ -n "$FAKE_NVIDIA_SMI_MATCH" ]; then
      for pid in $(pgrep -f "^[^ ]*python[^ ]* $FAKE_NVIDIA_SMI_MATCH"); do
        echo "$pid, GPU-5e1b8c4a-27c1-4f0e-9d0a-0c7e6b1a2f10, 1024"
        devices=$(tr '\\0' '\\n' < /proc/$pid/environ | sed -n 's/^CUDA_VISIBLE_DEVICES=//p')
        [ -n "$FAKE_NVIDIA_SMI_SEEN" ] && : > "$FAKE_NVIDIA_SMI_SEEN/${devices:-unset}"
      done
    fi
    ;;
  *) exit 9 ;;
esac
"""

SERVER_ENV = {
    "FRAZIL_LOOP_INTERVAL_SECONDS": "0.2",
    "FRAZIL_CLAIM_RATE_PER_PILOT": "10000",
    "FRAZIL_LOG_LEVEL": "warning",
    "FRAZIL_HEARTBEAT_SECONDS": "1",
    "FRAZIL_RETRY_DELAY_SECONDS": "0",  # retries at once (tests/server/test_claim_wait_and_pacing.py shows the pacing)
}


@dataclass
class Deployment:
    """One server process, its store URL and a system token for pilots."""

    tmp: Path
    server: ServerProcess
    db: str
    token: str = ""
    pilots: list[subprocess.Popen[bytes]] = field(default_factory=list)

    async def submit(self, config: dict[str, Any], jobs: int, tasks_per_job: int = 1) -> str:
        """A dataset made in the store (the submit API is tested elsewhere); the
        server's loops materialize and queue its jobs."""
        store = await open_store(self.db)
        try:
            ds = await store.create_dataset(NewDataset(description="pilot test", jobs_submitted=jobs,
                                                       tasks_per_job=tasks_per_job, group="users",
                                                       username="alice"))
            await store.set_dataset_rights(ds.dataset_id, default_rights("alice", "users"))
            await store.add_config_version(ds.dataset_id, config, "alice")
            return ds.dataset_id
        finally:
            await store.close()

    def pilot(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``frazil pilot`` as its own process, logging to ``<tmp>/<name>.log``."""
        workdir = self.tmp / name
        workdir.mkdir(exist_ok=True)
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "pilot", "--server", self.server.url, "--token", self.token,
             "--workdir", str(workdir), "--max-backoff", "0.5", "--heartbeat", "1", "--term-grace", "2",
             "--log-level", "info", *args],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.pilots.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill_pilot(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a pilot and every process it started, as HTCondor does when it
        removes a job (modules run in sessions of their own, so killing the
        pilot's group alone would leave them running)."""
        if proc.poll() is not None:
            return
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for child in tree:
            try:
                child.kill()
            except psutil.Error:
                pass

    def stop_all(self) -> None:
        for proc in self.pilots:
            self.kill_pilot(proc)
        self.server.stop()


def deploy(tmp: Path, **env: str) -> Deployment:
    db = f"sqlite:///{tmp}/frazil.db"
    # pilots started by hand are grid pilots to the server: their file:// outputs may go below tmp
    server = ServerProcess(db, tmp / "data", env={**SERVER_ENV, "FRAZIL_GRID_FILE_ROOTS": str(tmp), **env})
    server.start()
    deployment = Deployment(tmp=tmp, server=server, db=db)
    deployment.token = server.token("pilot-test", role="pilot", groups="users")
    return deployment


async def tasks_of(db: str, dataset_id: str) -> list[dict[str, Any]]:
    store = await open_store(db)
    try:
        return sorted((await store.list_tasks(TaskFilter(dataset_id=dataset_id))).rows,
                      key=lambda row: (row.get("job_index", 0), row.get("task_index", 0)))
    finally:
        await store.close()


async def attempts_of(db: str, task_id: str) -> list[Attempt]:
    store = await open_store(db)
    try:
        return await store.get_attempts(task_id)
    finally:
        await store.close()


async def with_store(db: str, use: Callable[[Store], Awaitable[Any]]) -> Any:
    store = await open_store(db)
    try:
        return await use(store)
    finally:
        await store.close()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str,
                   on_timeout: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{on_timeout()}")
        await asyncio.sleep(0.2)
