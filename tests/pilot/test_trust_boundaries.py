"""Task code never reaches a secret (issue 11 item 1): a real server, run as a plain user, with
local pilots; a hostile module searches the file system, /proc and its environment for the
signing key and every token, and finds none (but finds the canary it planted itself)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from benchmarks.claim import free_port
from server.provisioning.pilot_user import ensure_pilot_user, needs_pilot_user
from server.secrets_dir import protect
from server.settings import Settings
from tests.pilot.pilot_support import tasks_of, with_store

REPO = Path(__file__).resolve().parents[2]
SEARCH = REPO / "tests" / "pilot" / "data" / "secret_search.py"
NOBODY = 65534


def plain_python() -> tuple[str, str]:
    """An interpreter another user can run, and the PYTHONPATH it needs for this venv's packages.

    A venv whose python links into a private home (pyenv under /root) cannot be run by
    another user; the system python of the same version with the venv's site-packages can."""
    real = Path(os.path.realpath(sys.executable))
    if all(p.stat().st_mode & stat.S_IXOTH for p in [*real.parents, real]):
        return sys.executable, ""
    system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/bin")
    assert system, "no python another user can run"
    return system, sysconfig.get_paths()["purelib"]


class PlainUserServer:
    """``frazil server`` with local pilots, as this user, or as nobody when the tests run as root."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.db = self.data / "frazil.db"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"] \
            if self.as_root else []
        self.python, packages = plain_python()
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(base),
                    "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), packages) if p),
                    "FRAZIL_DATA_DIR": str(self.data), "FRAZIL_LOOP_INTERVAL_SECONDS": "0.2",
                    "FRAZIL_PROVIDER_INTERVAL_SECONDS": "0.5", "FRAZIL_LOG_LEVEL": "warning",
                    "FRAZIL_LOCAL_SLOTS": "cpus=1,memory=2GB,disk=5GB"}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def frazil(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        done = subprocess.run([*self.prefix, self.python, "-m", "server.cli", *args], cwd=REPO,
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self) -> None:
        if self.as_root:
            os.chown(self.base, NOBODY, NOBODY)
        log = open(self.base / "server.log", "wb")
        self.proc = subprocess.Popen(
            [*self.prefix, self.python, "-m", "server.cli", "server", "--db", f"sqlite:///{self.db}",
             "--port", str(self.port), "--provider", "local"], cwd=REPO, env=self.env, stdout=log,
            stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, (self.base / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    return
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is root's own when tests run as root),
    not under /tmp: the module sandbox covers /tmp anyway, and the data dir must be hidden by --hide."""
    (REPO / "build").mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="trust-", dir=REPO / "build"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True) if not os.environ.get("KEEP_TRUST") else None


@pytest.fixture
def server(base: Path) -> Iterator[PlainUserServer]:
    running = PlainUserServer(base)
    try:
        yield running
    finally:
        running.stop()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.slow
async def test_a_module_finds_no_secret_of_the_server_or_its_pilot(server: PlainUserServer) -> None:
    server.start()
    alice = server.frazil("token", "create", "--user", "alice").strip()
    config = {"version": 3.2, "tasks": [{"name": "search", "requirements": {"memory": 0.5, "time": 0.5},
                                         "trays": [{"modules": [{"src": str(SEARCH), "args": str(server.db)}]}]}]}
    (server.base / "search.json").write_text(json.dumps(config))
    client = {"FRAZIL_URL": server.url, "FRAZIL_TOKEN": alice}
    out = server.frazil("submit", str(server.base / "search.json"), "--jobs", "1", env=client)
    dataset_id = re.search(r"\(([0-9a-f]+)\)", out).group(1)
    secrets = {"the signing key": (server.data / "auth.key").read_text().strip(), "alice's token": alice}
    deadline = time.monotonic() + 240
    while True:  # the pilot's token exists while the pilot lives: take it as soon as it is there
        for token_file in server.data.glob("pilots/*/pilot.token"):
            try:
                secrets[f"the pilot token {token_file.parent.name}"] = token_file.read_text().strip()
            except OSError:
                pass
        rows = await tasks_of(f"sqlite:///{server.db}", dataset_id)
        if rows and rows[0]["status"] in ("complete", "failed", "suspended"):
            break
        assert time.monotonic() < deadline, (server.base / "server.log").read_text()[-3000:]
        time.sleep(0.3)
    assert any(name.startswith("the pilot token") for name in secrets), "no pilot token was seen"
    [row] = rows
    logs = await with_store(f"sqlite:///{server.db}", lambda s: s.task_logs(row["task_id"]))
    stdout = "".join(log.data for log in logs if log.name == "stdout")
    assert row["status"] == "complete", stdout + "".join(log.data for log in logs if log.name == "stdlog")
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["canary"] in report["found"], "the search cannot even find its own canary"
    assert report["stats"]["files"] > 500 and report["stats"]["procs"] >= 1
    leaked = {name: report["found"][_sha(value)] for name, value in secrets.items() if _sha(value) in report["found"]}
    assert leaked == {}, f"secrets a module could read: {leaked}"
    assert report["db_readable"] == [], "the module can see the server's database"
    assert not {"FRAZIL_TOKEN", "FRAZIL_TOKEN_FILE"} & set(report["environment"])
    assert report["uid"] != 0
    # the server's own files are its alone
    assert stat.S_IMODE(server.data.stat().st_mode) == 0o700
    for path in (server.data / "auth.key", server.db):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_protect_makes_key_and_database_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for name in ("auth.key", "frazil.db", "frazil.db-wal"):
        (data / name).write_text("x")
        os.chmod(data / name, 0o644)
    old = os.umask(0o022)
    try:
        protect(Settings(data_dir=str(data), db=f"sqlite:///{data}/frazil.db"), pilots_other_user=True)
        created = data / "new"
        created.write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o711  # pilots of another user reach their own dir by name
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()} == \
        {"auth.key": 0o600, "frazil.db": 0o600, "frazil.db-wal": 0o600, "new": 0o600}


def test_local_pilots_of_a_root_server_run_as_frazil_pilot(base: Path) -> None:
    """As root, the pilot user is created on first use and the pilot runs as it; as anyone
    else, pilots run as the server's user (the sandbox is then the boundary)."""
    import asyncio

    from common.resources import Resources
    from server.provisioning.base import PilotShape
    from server.provisioning.local import LocalProvider

    script = base / "who.sh"
    # $4 is the --token-file path; the pilot writes into its own directory's parent only when allowed
    script.write_text("#!/bin/sh\n[ \"$1\" = --help ] && exit 0\n"
                      "id -u > \"$(dirname \"$4\")/who\"\nls -l \"$4\" >> \"$(dirname \"$4\")/who\"\n")
    script.chmod(0o755)
    provider = LocalProvider(server_url="http://127.0.0.1:1", slots=Resources(cpu=1, memory=1, disk=1, time=0),
                             directory=base / "pilots", mint_token=lambda: "not-a-real-token",
                             command=[str(script)], hide=[str(base)], run_as="frazil-pilot")

    async def start() -> None:
        await provider.submit(PilotShape(cpu=1, gpu=0, memory=0.5, disk=0.5, time=1, site="local"), 1)

    asyncio.run(start())
    [marker] = [p / "who" for p in (base / "pilots").iterdir()]
    deadline = time.monotonic() + 20
    while not marker.exists() or len(marker.read_text().splitlines()) < 2:
        assert time.monotonic() < deadline, "the pilot command did not run"
        time.sleep(0.05)
    uid = int(marker.read_text().splitlines()[0])
    if needs_pilot_user():
        assert uid == ensure_pilot_user().uid != 0
        assert "-rw------- 1 frazil-pilot" in marker.read_text()
    else:
        assert uid == os.geteuid()
    asyncio.run(provider.close())


def test_a_pilot_user_that_cannot_start_the_pilot_is_reported(base: Path, tmp_path: Path) -> None:
    """As root, a pilot program the pilot user cannot reach (under root's private temp dir)
    leaves pilots running as root and says why; as anyone else nothing changes."""
    import asyncio

    from common.resources import Resources
    from server.provisioning.base import PilotShape
    from server.provisioning.local import LocalProvider

    script = tmp_path / "private.sh"  # pytest's tmp_path is private to the user running the tests
    script.write_text("#!/bin/sh\n[ \"$1\" = --help ] && exit 0\nid -u > \"$(dirname \"$4\")/who\"\n")
    script.chmod(0o755)
    provider = LocalProvider(server_url="http://127.0.0.1:1", slots=Resources(cpu=1, memory=1, disk=1, time=0),
                             directory=base / "pilots", mint_token=lambda: "not-a-real-token",
                             command=[str(script)], run_as="frazil-pilot")

    async def start() -> None:
        await provider.submit(PilotShape(cpu=1, gpu=0, memory=0.5, disk=0.5, time=1, site="local"), 1)

    asyncio.run(start())
    [marker] = [p / "who" for p in (base / "pilots").iterdir()]
    deadline = time.monotonic() + 20
    while not marker.exists() or not marker.read_text().strip():
        assert time.monotonic() < deadline, "the pilot command did not run"
        time.sleep(0.05)
    assert int(marker.read_text()) == os.geteuid()
    if needs_pilot_user():
        assert provider.last_error.startswith("local pilots run as root: frazil-pilot cannot start")
    else:
        assert provider.last_error == ""
    asyncio.run(provider.close())
