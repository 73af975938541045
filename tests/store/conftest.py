"""The ``store`` fixture: every contract test runs on SQLite and on MongoDB's
wire protocol (a real MongoDB when FRAZIL_TEST_MONGODB_URL is set, else an
nx-27017 server started here on a free port).

Tests marked ``real_mongodb`` use queries nx-27017 cannot run; without a real
MongoDB their Mongo leg is left out of the parametrisation (not skipped), and
docs/store.md lists them.
"""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from typing import AsyncIterator, Iterator

import pytest

from server.store import Store, open_store

MONGO_ENV = "FRAZIL_TEST_MONGODB_URL"
BACKENDS = ("sqlite", "mongo")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    if any("backend" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        return  # a backend-specific test chose its backend itself
    backends = list(BACKENDS)
    if metafunc.definition.get_closest_marker("real_mongodb") and not os.environ.get(MONGO_ENV):
        backends.remove("mongo")
    metafunc.parametrize("backend", backends)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: pathlib.Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nx-27017 exited with {proc.returncode}; log:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nx-27017 did not accept connections on port {port} within {timeout} s")


@pytest.fixture(scope="session")
def mongo_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mongodb://host:port`` of the server the Mongo leg talks to."""
    external = os.environ.get(MONGO_ENV)
    if external:
        yield external
        return
    exe = pathlib.Path(sys.executable).parent / "nx-27017"
    if not exe.exists():
        raise RuntimeError(f"{exe} not found: install the test extras (pip install -e '.[test]')")
    folder = tmp_path_factory.mktemp("nx27017")
    port = _free_port()
    log = folder / "nx.log"
    cmd = [str(exe), "--host", "127.0.0.1", "-p", str(port), "--data-dir", str(folder / "data"),
           "--log-file", str(log), "--pid-file", str(folder / "nx.pid")]
    with open(folder / "stdout.log", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, log)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def with_database(base: str, name: str) -> str:
    """``base`` with its path replaced by ``/name`` (query options kept)."""
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _drop_database(url: str, name: str) -> None:
    import pymongo
    client: pymongo.MongoClient = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture
def store_url(backend: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL naming a fresh, empty store of ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    base = request.getfixturevalue("mongo_base_url")
    name = f"frazil_test_{uuid.uuid4().hex[:16]}"
    yield with_database(base, name)
    if os.environ.get(MONGO_ENV):  # nx-27017's data dir goes away with its tmp folder
        _drop_database(base, name)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()
