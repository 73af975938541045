"""A real one-node Slurm cluster for the tests (Debian's slurm-wlm + munge).

Everything lives in a temporary directory: a generated ``slurm.conf`` on
free loopback ports, the state, spool, logs and the job completion file
(there is no accounting storage, so finished jobs are read from
``JobCompLoc``). ``slurmctld -D`` and ``slurmd -D`` run in the foreground
of their own processes (no daemonising: no double-daemon port race) and are
stopped by PID. munged is started when no munge socket answers.

Needs root (slurmd runs jobs as their submitting user); CI runs as root.
Usable from a shell too: ``python -m tests.provisioning.slurm_cluster DIR``
starts one and prints the ``SLURM_CONF`` to export.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

PROGRAMS = ("slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "munged", "munge")
STATE_DIRS = ("/run/munge", "/var/log/munge", "/var/lib/munge")


class SlurmUnavailable(RuntimeError):
    """The machine cannot run a test cluster (missing packages, not root)."""


def _free_ports(count: int) -> list[int]:
    """``count`` consecutive free ports (slurmd's port is slurmctld's + 1 by convention here)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + count >= 65535:
            continue
        try:
            held = []
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return list(range(base, base + count))
    raise RuntimeError("no run of free ports found")


def _munge_works() -> bool:
    try:
        made = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if made.returncode != 0:
            return False
        checked = subprocess.run(["unmunge"], input=made.stdout, capture_output=True, timeout=10)
        return checked.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_munged() -> None:
    """Start munged (as the munge user, with its key) unless one already answers."""
    if _munge_works():
        return
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
    for path in (key.parent, *map(Path, STATE_DIRS)):
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, "munge", "munge")
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", "munged"], check=False, capture_output=True, timeout=30)
    for _ in range(100):
        if _munge_works():
            return
        time.sleep(0.1)
    raise SlurmUnavailable("munged did not start (munge -n | unmunge fails)")


class SlurmCluster:
    """One controller and one compute node on 127.0.0.1, all files under ``directory``."""

    def __init__(self, directory: Path, *, cpus: int = 8, memory_mb: int = 8000) -> None:
        self.directory = directory.resolve()
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.directory / "slurm.conf"
        self.jobcomp = self.directory / "jobcomp.txt"
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def check(self) -> None:
        missing = [p for p in PROGRAMS if shutil.which(p) is None]
        if missing:
            raise SlurmUnavailable(f"missing {', '.join(missing)}: apt-get install slurm-wlm munge "
                                   f"(make test-deps does it)")
        if os.geteuid() != 0:
            raise SlurmUnavailable("a test Slurm cluster needs root (slurmd starts jobs as their user)")

    def write_conf(self) -> None:
        ctld, slurmd = _free_ports(2)
        d = self.directory
        for sub in ("state", "spool", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text("\n".join([
            "ClusterName=frazil-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            "SlurmUser=root", "SlurmdUser=root",
            f"SlurmctldPort={ctld}", f"SlurmdPort={slurmd}",
            "AuthType=auth/munge",
            f"StateSaveLocation={d}/state", f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/log/ctld.log", f"SlurmdLogFile={d}/log/d.log",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            "MpiDefault=none", "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt", f"JobCompLoc={self.jobcomp}",
            # quick turnaround for tests: time limits enforced within seconds, finished jobs
            # leave squeue soon, nodes never wait long for a killed job's processes
            "OverTimeLimit=0", "KillWait=5", "MinJobAge=5", "InactiveLimit=0",
            "SchedulerParameters=sched_interval=2",
            # the node may claim more CPUs than the machine has: test pilots mostly sleep
            "SlurmdParameters=config_overrides",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName=main Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))

    def start(self, timeout: float = 60.0) -> None:
        self.check()
        ensure_munged()
        self.write_conf()
        env = {**os.environ, **self.env}
        log = open(self.directory / "log" / "daemons.out", "ab")
        self.procs.append(subprocess.Popen(["slurmctld", "-D", "-f", str(self.conf)], env=env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True))
        time.sleep(1.0)
        self.procs.append(subprocess.Popen(["slurmd", "-D", "-f", str(self.conf)], env=env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                break
            done = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            state = done.stdout.strip()
            if state == "idle":
                return
            time.sleep(0.3)
        logs = "\n".join(f.read_text(errors="replace")[-2000:] for f in (self.directory / "log").glob("*"))
        self.stop()
        raise RuntimeError(f"Slurm did not become idle (sinfo: {state!r}); logs:\n{logs}")

    def run(self, *argv: str) -> str:
        done = subprocess.run(list(argv), env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def cancel_all(self, timeout: float = 30.0) -> None:
        """scancel every job and wait until slurmctld holds none (so no test sees another's)."""
        self.run("scancel", "--full", "-u", "root")
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", "-o", "%i").strip() and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        # Jobs first, so no pilot outlives the cluster that started it.
        if self.procs and all(p.poll() is None for p in self.procs):
            subprocess.run(["scancel", "--full", "-u", "root"], env={**os.environ, **self.env},
                           capture_output=True, timeout=30)
            time.sleep(1.0)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """One cluster for the whole session (starting one takes a few seconds)."""
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


if __name__ == "__main__":
    cluster = SlurmCluster(Path(sys.argv[1]))
    cluster.directory.mkdir(parents=True, exist_ok=True)
    cluster.start()
    print(f"export SLURM_CONF={cluster.conf}   # slurmctld/slurmd pids: {[p.pid for p in cluster.procs]}")
