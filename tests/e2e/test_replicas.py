"""Two `frazil server` replicas on one MongoDB store (nx-27017 here, a real
MongoDB where FRAZIL_TEST_MONGODB_URL is set), pilots on both.

The background loops run on exactly one replica at a time (store leases);
``kill -9`` of the replica holding them (and of the pilots that talked to
it, as if their machine went down) → the other replica takes the loops over
within one loop lease, gives the lost pilots' tasks back when their leases
run out, and every task ends complete exactly once.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pymongo
import pytest
import requests

from tests.e2e.test_end_to_end import REPO, Frazil
from tests.store.conftest import mongo_base_url, with_database  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
TASK = REPO / "tests" / "provisioning" / "slurm_task.py"
LOOP_LEASE_SECONDS = 30.0
"""max(30 s, 10 loop intervals): what scheduling.service gives a loop's lease at 0.3 s intervals."""
LOOPS = ("materialize", "release", "queue", "reap", "rollup")


class Replicas:
    def __init__(self, tmp_path: Path, db: str) -> None:
        key = tmp_path / "auth.key"
        shared = {"db": db, "auth_key_file": str(key), "lease_seconds": "10", "heartbeat_seconds": "2"}
        self.servers = [Frazil(tmp_path / f"replica{i}", provider="none", **shared) for i in (0, 1)]
        self.pilots: dict[int, list[subprocess.Popen[bytes]]] = {0: [], 1: []}
        self.tmp_path = tmp_path

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def start_pilots(self, replica: int, count: int) -> None:
        server = self.servers[replica]
        token = server.cli("token", "create", "--user", "pilot", "--role", "pilot").strip()
        for n in range(count):
            workdir = self.tmp_path / f"pilot{replica}-{n}"
            log = open(self.tmp_path / f"pilot{replica}-{n}.log", "wb")
            self.pilots[replica].append(subprocess.Popen(
                [sys.executable, "-m", "server.cli", "pilot", "--server", server.url, "--token", token,
                 "--cpus", "1", "--memory", "1", "--disk", "1", "--time", "1", "--heartbeat", "2",
                 "--max-backoff", "1", "--idle-timeout", "60", "--workdir", str(workdir)],
                cwd=REPO, env=server.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def kill(self, replica: int) -> None:
        """kill -9 of the replica and of its pilots' whole process groups (their machine went down)."""
        server = self.servers[replica].proc
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        for pilot in self.pilots[replica]:
            if pilot.poll() is None:
                os.killpg(pilot.pid, signal.SIGKILL)
                pilot.wait()

    def stop(self) -> None:
        for replica in (0, 1):
            for proc in self.pilots[replica]:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
        for server in self.servers:
            server.stop()


@pytest.fixture
def replicas(tmp_path: Path, mongo_base_url: str) -> Iterator[Replicas]:  # noqa: F811
    name = f"frazil_replicas_{uuid.uuid4().hex[:12]}"
    group = Replicas(tmp_path, with_database(mongo_base_url, name))
    yield group
    group.stop()
    if os.environ.get("FRAZIL_TEST_MONGODB_URL"):
        pymongo.MongoClient(mongo_base_url).drop_database(name)


def loop_rounds(server: Frazil) -> dict[str, float]:
    """Rounds each loop ran on this replica (from its /metrics)."""
    text = requests.get(server.url + "/metrics", timeout=30).text
    rounds = {}
    for loop, value in re.findall(r'frazil_loop_runs_total\{loop="(\w+)",result="ok"\} ([0-9.e+]+)', text):
        rounds[loop] = float(value)
    return rounds


def holders(db: str) -> dict[str, str]:
    client: pymongo.MongoClient = pymongo.MongoClient(db, serverSelectionTimeoutMS=5000)
    try:
        database = client.get_default_database()
        return {doc["_id"][len("loop."):]: doc["holder"] for doc in database["loop_leases"].find({})
                if str(doc["_id"]).startswith("loop.")}
    finally:
        client.close()


def test_loops_on_one_replica_failover_after_kill_9_and_every_task_complete_once(
        tmp_path: Path, replicas: Replicas) -> None:
    a, b = replicas.servers
    replicas.start()
    db = a.env["FRAZIL_DB"]
    config = {"version": 3.2, "description": "two replicas",
              "tasks": [{"name": "work", "requirements": {"memory": 0.1, "time": 0.01},
                         "trays": [{"modules": [{"name": "work", "src": str(TASK),
                                                 "args": {"job": "$(job)", "seconds": 3}}]}]}]}
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(config))
    dataset_id = a.cli("submit", str(path), "--jobs", "24").split("(")[1].split(")")[0]
    replicas.start_pilots(0, 2)
    replicas.start_pilots(1, 2)
    # every loop is held by one replica, and only that replica runs it
    time.sleep(3)
    first = {0: loop_rounds(a), 1: loop_rounds(b)}
    time.sleep(3)
    second = {0: loop_rounds(a), 1: loop_rounds(b)}
    held = holders(db)
    assert set(LOOPS) <= set(held), held
    for loop in LOOPS:
        ran = [r for r in (0, 1) if second[r].get(loop, 0) > first[r].get(loop, 0)]
        assert len(ran) <= 1, (loop, first, second)
        if ran:
            assert held[loop].endswith(f":{replicas.servers[ran[0]].port}"), (loop, held)
    # wait until both replicas' pilots are busy, then kill the replica holding the queue loop
    deadline = time.monotonic() + 90
    while sum(1 for p in b.get("/pilots").values() if p.get("tasks")) < 4:
        assert time.monotonic() < deadline, b.get("/pilots")
        time.sleep(0.3)
    victim = 0 if held["queue"].endswith(f":{a.port}") else 1
    survivor = replicas.servers[1 - victim]
    replicas.kill(victim)
    killed_at = time.monotonic()
    deadline = killed_at + LOOP_LEASE_SECONDS + 15
    while True:
        now_held = holders(db)
        if all(now_held.get(loop, "").endswith(f":{survivor.port}") for loop in LOOPS):
            break
        assert time.monotonic() < deadline, now_held
        time.sleep(0.5)
    takeover = time.monotonic() - killed_at
    assert takeover <= LOOP_LEASE_SECONDS + 5, takeover  # within one lease (plus a loop interval or so)
    print(f"loops moved to the surviving replica {takeover:.1f} s after kill -9")
    # the lost pilots' tasks come back (lease 10 s) and the survivor's pilots finish everything
    deadline = time.monotonic() + 150
    while True:
        counts = survivor.get(f"/datasets/{dataset_id}/task_counts/status")
        if counts.get("complete") == 24:
            break
        assert time.monotonic() < deadline, counts
        time.sleep(1)
    tasks = survivor.get(f"/datasets/{dataset_id}/tasks", keys="task_id|status")
    for task_id in tasks:
        attempts = survivor.get(f"/datasets/{dataset_id}/tasks/{task_id}/attempts")["attempts"]
        complete = [x for x in attempts if x["status"] == "complete"]
        assert len(complete) == 1, attempts  # complete exactly once, even where a lost pilot had it
        assert all(x["failure_class"] == "infra" for x in attempts if x["status"] == "reset"), attempts
    assert any(x for x in (survivor.get(f"/datasets/{dataset_id}/tasks/{t}/attempts")["attempts"]
                           for t in tasks) if len(x) > 1), "no task was taken from a lost pilot"
